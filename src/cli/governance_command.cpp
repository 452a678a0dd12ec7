// `turnout keys ...` and `turnout teams ...` (docs/REFERENCE.md "Governance"): virtual
// keys and teams, straight on the ledger database, so the first key needs no running
// server. Every command prints JSON; every write is audited with the actor "cli".
#include "admit/admission.hpp"
#include "cli/cli_support.hpp"
#include "cli/commands.hpp"
#include "common/time_text.hpp"
#include "config/config.hpp"
#include "governance/admin_operations.hpp"
#include "governance/record_json.hpp"
#include "governance/store.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <functional>
#include <iostream>
#include <memory>

namespace turnout::cli {
namespace {

constexpr std::string_view kActor = "cli";
constexpr std::string_view kClear = "none";  // on update: removes an optional field

// Flag values as typed; turned into governance::Fields once, with every error named.
struct FieldFlags {
  std::optional<std::string> name, team, models, budget_usd, budget_period, timezone, rpm, tpm, max_parallel,
      expires;
};

struct CommandOptions {
  std::string id;
  std::string config_file;
  FieldFlags flags;
};

void add_field_flags(CLI::App* command, FieldFlags& flags, bool keys, bool update) {
  const std::string clear = update ? " ('none' removes it)" : "";
  command->add_option("--name", flags.name, keys ? "what the key is for" : "the team's name (its id at creation)");
  if (keys) command->add_option("--team", flags.team, "the team the key belongs to" + clear);
  command->add_option("--models", flags.models, "comma-separated allow-list of models" + clear);
  command->add_option("--budget-usd", flags.budget_usd, "budget per period in US dollars, e.g. 25 or 0.01" + clear);
  command->add_option("--budget-period", flags.budget_period, "day | week | month | lifetime (default month)");
  command->add_option("--timezone", flags.timezone, "IANA time zone of the periods (default UTC)");
  command->add_option("--rpm", flags.rpm, "requests per minute" + clear);
  command->add_option("--tpm", flags.tpm, "tokens per minute" + clear);
  command->add_option("--max-parallel", flags.max_parallel, "concurrent requests" + clear);
  command->add_option("--expires", flags.expires, "expiry, RFC 3339 (e.g. 2027-01-01T00:00:00Z)" + clear);
}

std::optional<std::uint64_t> parse_count(const std::string& text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value == 0) return std::nullopt;
  return value;
}

std::vector<std::string> split_models(const std::string& text) {
  std::vector<std::string> models;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    if (comma > start) models.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return models;
}

// The flags as Fields; an error names the flag.
Result<governance::Fields> to_fields(const FieldFlags& flags, bool update) {
  governance::Fields fields;
  const auto clears = [&](const std::optional<std::string>& flag) { return update && flag && *flag == kClear; };
  fields.name = flags.name;
  if (clears(flags.team)) {
    fields.team.clear = true;
  } else if (flags.team) {
    fields.team.value = *flags.team;
  }
  if (clears(flags.models)) {
    fields.models.clear = true;
  } else if (flags.models) {
    fields.models.value = split_models(*flags.models);
  }
  if (clears(flags.budget_usd)) {
    fields.budget_pico.clear = true;
  } else if (flags.budget_usd) {
    auto pico = governance::parse_usd(*flags.budget_usd);
    if (!pico) return make_error("--budget-usd: " + pico.error().message);
    fields.budget_pico.value = *pico;
  }
  if (flags.budget_period) {
    fields.budget_period = governance::parse_budget_period(*flags.budget_period);
    if (!fields.budget_period) return make_error("--budget-period: expected day, week, month or lifetime");
  }
  fields.timezone = flags.timezone;
  const std::array<std::pair<const std::optional<std::string>*, governance::Change<std::uint64_t>*>, 3> counts{
      {{&flags.rpm, &fields.rpm}, {&flags.tpm, &fields.tpm}, {&flags.max_parallel, &fields.max_parallel}}};
  const std::array<std::string_view, 3> count_names{"--rpm", "--tpm", "--max-parallel"};
  for (std::size_t i = 0; i < counts.size(); ++i) {
    const auto& [flag, change] = counts[i];
    if (clears(*flag)) {
      change->clear = true;
    } else if (*flag) {
      change->value = parse_count(**flag);
      if (!change->value) return make_error(fmt::format("{}: expected a positive integer", count_names[i]));
    }
  }
  if (clears(flags.expires)) {
    fields.expires_at_ms.clear = true;
  } else if (flags.expires) {
    const auto seconds = parse_time_param(*flags.expires);
    if (!seconds) return make_error("--expires: expected an RFC 3339 time such as 2027-01-01T00:00:00Z");
    fields.expires_at_ms.value = static_cast<std::int64_t>(std::llround(*seconds * 1000));
  }
  return fields;
}

using StoreCommand = std::function<governance::StoreResult<std::string>(governance::GovernanceStore&, std::int64_t)>;

// Opens the store named by the config and runs `command`, printing its JSON.
int run(const std::string& config_file, std::string_view what, const StoreCommand& command) {
  auto config = config::load_config(optional_path(config_file), config::process_env());
  if (!config) {
    std::cerr << "turnout: config error: " << config.error().message << "\n";
    return kExitUsage;
  }
  auto store = governance::GovernanceStore::open(config->ledger.url);
  if (!store) {
    std::cerr << "turnout " << what << ": " << store.error().message << "\n";
    return kExitFailure;
  }
  auto output = command(**store, admit::system_now_ms());
  if (!output) {
    std::cerr << "turnout " << what << ": " << output.error().message << "\n";
    const governance::FailureKind kind = output.error().kind;
    const bool database = kind == governance::FailureKind::database || kind == governance::FailureKind::commit_unknown;
    return database ? kExitFailure : kExitUsage;
  }
  std::cout << *output << "\n";
  return kExitOk;
}

// Registers `name` under `parent` with its options; `make` turns them into the command.
CLI::App* subcommand(CLI::App* parent, int& exit_code, const std::string& name, const std::string& help,
                     std::string_view what, bool takes_id, std::optional<std::pair<bool, bool>> field_flags,
                     std::function<StoreCommand(const CommandOptions&, governance::Fields)> make) {
  auto options = std::make_shared<CommandOptions>();
  CLI::App* command = parent->add_subcommand(name, help);
  if (takes_id) command->add_option("id", options->id, "the key's public id, or the team's id")->required();
  if (field_flags) add_field_flags(command, options->flags, field_flags->first, field_flags->second);
  command->add_option("--config", options->config_file,
                      "YAML config naming the ledger (default: ./turnout.yaml if present, else built-in defaults)");
  const bool update = field_flags && field_flags->second;
  command->callback([options, &exit_code, make, what, update] {
    auto fields = to_fields(options->flags, update);
    if (!fields) {
      std::cerr << "turnout " << what << ": " << fields.error().message << "\n";
      exit_code = kExitUsage;
      return;
    }
    exit_code = run(options->config_file, what, make(*options, std::move(*fields)));
  });
  return command;
}

// A command that runs one admin operation with the flags' id, fields and the CLI's actor.
using Operation = std::function<governance::StoreResult<std::string>(governance::GovernanceStore&, const std::string& id,
                                                                     const governance::Fields&, std::int64_t now)>;

std::function<StoreCommand(const CommandOptions&, governance::Fields)> operation(Operation op) {
  return [op](const CommandOptions& options, governance::Fields fields) -> StoreCommand {
    return [op, id = options.id, fields](governance::GovernanceStore& store, std::int64_t now) {
      return op(store, id, fields, now);
    };
  };
}

}  // namespace

void add_keys_command(CLI::App& app, int& exit_code) {
  namespace gov = governance;
  CLI::App* keys = app.add_subcommand("keys", "Virtual keys on the ledger database (prints JSON)");
  keys->require_subcommand(1);
  const std::string actor(kActor);
  subcommand(keys, exit_code, "create", "Create a key; the whole key is printed once", "keys create", false,
             std::pair{true, false},
             operation([actor](gov::GovernanceStore& store, const std::string&, const gov::Fields& fields,
                               std::int64_t now) { return gov::create_key(store, fields, actor, now); }));
  subcommand(keys, exit_code, "list", "List every key", "keys list", false, std::nullopt,
             operation([](gov::GovernanceStore& store, const std::string&, const gov::Fields&, std::int64_t) {
               return gov::list_keys(store);
             }));
  subcommand(keys, exit_code, "show", "One key with its usage in the current period", "keys show", true, std::nullopt,
             operation([](gov::GovernanceStore& store, const std::string& id, const gov::Fields&, std::int64_t now) {
               return gov::show_key(store, id, now);
             }));
  subcommand(keys, exit_code, "update", "Change a key's fields", "keys update", true, std::pair{true, true},
             operation([actor](gov::GovernanceStore& store, const std::string& id, const gov::Fields& fields,
                               std::int64_t now) { return gov::update_key(store, id, fields, actor, now); }));
  subcommand(keys, exit_code, "revoke", "Revoke a key (every replica refuses it within the key cache TTL)",
             "keys revoke", true, std::nullopt,
             operation([actor](gov::GovernanceStore& store, const std::string& id, const gov::Fields&,
                               std::int64_t now) { return gov::revoke_key(store, id, actor, now); }));
  subcommand(keys, exit_code, "rotate", "Give a key a new secret (same id, limits and usage); printed once",
             "keys rotate", true, std::nullopt,
             operation([actor](gov::GovernanceStore& store, const std::string& id, const gov::Fields&,
                               std::int64_t now) { return gov::rotate_key(store, id, actor, now); }));
}

void add_teams_command(CLI::App& app, int& exit_code) {
  namespace gov = governance;
  CLI::App* teams = app.add_subcommand("teams", "Teams on the ledger database (prints JSON)");
  teams->require_subcommand(1);
  const std::string actor(kActor);
  subcommand(teams, exit_code, "create", "Create a team; --name is its id", "teams create", false,
             std::pair{false, false},
             operation([actor](gov::GovernanceStore& store, const std::string&, const gov::Fields& fields,
                               std::int64_t now) { return gov::create_team(store, fields, actor, now); }));
  subcommand(teams, exit_code, "list", "List every team", "teams list", false, std::nullopt,
             operation([](gov::GovernanceStore& store, const std::string&, const gov::Fields&, std::int64_t) {
               return gov::list_teams(store);
             }));
  subcommand(teams, exit_code, "show", "One team with its usage in the current period", "teams show", true,
             std::nullopt,
             operation([](gov::GovernanceStore& store, const std::string& id, const gov::Fields&, std::int64_t now) {
               return gov::show_team(store, id, now);
             }));
  subcommand(teams, exit_code, "update", "Change a team's fields", "teams update", true, std::pair{false, true},
             operation([actor](gov::GovernanceStore& store, const std::string& id, const gov::Fields& fields,
                               std::int64_t now) { return gov::update_team(store, id, fields, actor, now); }));
}

}  // namespace turnout::cli
