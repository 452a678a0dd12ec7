#include "config/document_reader.hpp"

#include "config/env_substitution.hpp"
#include "pricing/pricing.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <system_error>

namespace turnout::config {
namespace {

// Values that must never appear in a message: keys, extra headers (Azure's `api-key`),
// and the ledger URL (a PostgreSQL URL carries a password).
bool is_secret_path(std::string_view path) {
  return path.ends_with(".api_key") || path.find(".headers.") != std::string_view::npos ||
         path.starts_with("server.api_keys") || path == "ledger.url";
}

std::string_view kind_of(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null: return "nothing (null)";
    case YAML::NodeType::Scalar: return "a single value";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Undefined: break;
  }
  return "nothing";
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> previous(b.size() + 1);
  std::vector<std::size_t> current(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
    }
    std::swap(previous, current);
  }
  return previous[b.size()];
}

std::string location(std::string_view source, const YAML::Mark& mark) {
  std::string text(source);
  if (mark.line >= 0) {
    text += ':' + std::to_string(mark.line + 1) + ':' + std::to_string(mark.column + 1);
  }
  return text;
}

bool is_all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::string child_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  std::string path(parent);
  path += '.';
  path += key;
  return path;
}

std::string index_path(std::string_view list, std::size_t index) {
  return std::string(list) + '[' + std::to_string(index) + ']';
}

DocumentReader::DocumentReader(std::string source, const EnvLookup& env, bool from_file)
    : source_(std::move(source)), env_(env), from_file_(from_file) {}

std::optional<YAML::Node> DocumentReader::load(std::string_view yaml_text) {
  try {
    return YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    errors_.push_back(location(source_, e.mark) + ": invalid YAML: " + e.msg);
    return std::nullopt;
  }
}

void DocumentReader::fail(const YAML::Node& node, std::string_view path, std::string_view problem) {
  const YAML::Mark mark = from_file_ ? node.Mark() : YAML::Mark::null_mark();
  errors_.push_back(location(source_, mark) + ": " + std::string(path) + ": " + std::string(problem));
}

void DocumentReader::fail(std::string_view path, std::string_view problem) {
  const auto read = values_read_.find(path);
  const YAML::Mark mark = read == values_read_.end() ? YAML::Mark::null_mark() : read->second.mark;
  errors_.push_back(location(source_, mark) + ": " + std::string(path) + ": " + std::string(problem));
}

bool DocumentReader::expect_map(const YAML::Node& node, std::string_view path) {
  if (node.IsMap() || node.IsNull()) return true;
  fail(node, path, "expected a map, got " + std::string(kind_of(node)));
  return false;
}

bool DocumentReader::expect_list(const YAML::Node& node, std::string_view path) {
  if (node.IsSequence() || node.IsNull()) return true;
  fail(node, path, "expected a list, got " + std::string(kind_of(node)));
  return false;
}

std::optional<std::string> DocumentReader::key_text(const YAML::Node& key, std::string_view path) {
  if (key.IsScalar()) return key.Scalar();
  fail(key, path, "keys must be plain names, got " + std::string(kind_of(key)));
  return std::nullopt;
}

void DocumentReader::reject_unknown_keys(const YAML::Node& map, std::string_view path,
                                         std::initializer_list<std::string_view> known) {
  if (!map.IsMap()) return;
  for (const auto& entry : map) {
    const auto key = key_text(entry.first, path);
    if (!key || std::find(known.begin(), known.end(), *key) != known.end()) continue;

    std::string problem = "unknown key";
    const auto closest = std::min_element(known.begin(), known.end(), [&](std::string_view a, std::string_view b) {
      return edit_distance(*key, a) < edit_distance(*key, b);
    });
    if (closest != known.end() && edit_distance(*key, *closest) <= 2) {
      problem += "; did you mean `" + std::string(*closest) + "`?";
    } else {
      problem += " (expected one of:";
      for (std::string_view name : known) problem += " " + std::string(name);
      problem += ")";
    }
    fail(entry.first, child_path(path, *key), problem);
  }
}

std::optional<DocumentReader::Scalar> DocumentReader::scalar(const YAML::Node& node, std::string_view path,
                                                             std::string_view expected) {
  if (!node.IsScalar()) {
    fail(node, path, "expected " + std::string(expected) + ", got " + std::string(kind_of(node)));
    return std::nullopt;
  }
  auto substituted = substitute_env(node.Scalar(), env_);
  if (!substituted) {
    fail(node, path, substituted.error().message);
    return std::nullopt;
  }
  const bool echo_allowed = !substituted->used_environment && !is_secret_path(path);
  if (from_file_) values_read_.insert_or_assign(std::string(path), ValueRead{node.Mark(), echo_allowed});
  return Scalar{std::move(substituted->text), echo_allowed};
}

std::string DocumentReader::got(const Scalar& value) const {
  return value.echo_allowed ? " (got \"" + value.text + "\")" : std::string();
}

std::optional<std::string> DocumentReader::string(const YAML::Node& node, std::string_view path) {
  auto value = scalar(node, path, "a string");
  if (!value) return std::nullopt;
  return std::move(value->text);
}

std::optional<std::string> DocumentReader::non_empty_string(const YAML::Node& node, std::string_view path) {
  auto value = string(node, path);
  if (value && value->empty()) {
    fail(node, path, "must not be empty");
    return std::nullopt;
  }
  return value;
}

std::optional<std::uint64_t> DocumentReader::integer(const YAML::Node& node, std::string_view path,
                                                     std::uint64_t min, std::uint64_t max) {
  const auto value = scalar(node, path, "a whole number");
  if (!value) return std::nullopt;
  const std::string_view text = value->text;
  if (text.starts_with('-') && is_all_digits(text.substr(1))) {
    fail(node, path, "must not be negative" + got(*value));
    return std::nullopt;
  }
  std::uint64_t number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (!is_all_digits(text) || end != text.data() + text.size()) {
    fail(node, path, "expected a whole number" + got(*value));
    return std::nullopt;
  }
  if (ec == std::errc::result_out_of_range || number > max) {
    fail(node, path, "must be at most " + std::to_string(max) + got(*value));
    return std::nullopt;
  }
  if (number < min) {
    fail(node, path, "must be at least " + std::to_string(min) + got(*value));
    return std::nullopt;
  }
  return number;
}

std::optional<double> DocumentReader::fraction(const YAML::Node& node, std::string_view path) {
  const auto value = scalar(node, path, "a number from 0 to 1");
  if (!value) return std::nullopt;
  const std::string_view text = value->text;
  double number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc{} || end != text.data() + text.size() || !(number >= 0 && number <= 1)) {
    fail(node, path, "expected a number from 0 to 1" + got(*value));
    return std::nullopt;
  }
  return number;
}

std::optional<double> DocumentReader::seconds(const YAML::Node& node, std::string_view path, bool zero_allowed) {
  // A bound that keeps every duration far from overflowing a std::chrono conversion.
  constexpr double kMaxSeconds = 1'000'000;
  const auto value = scalar(node, path, "a number of seconds");
  if (!value) return std::nullopt;
  const std::string_view text = value->text;
  double number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(number)) {
    fail(node, path, "expected a number of seconds" + got(*value));
    return std::nullopt;
  }
  if (number < 0) {
    fail(node, path, "must not be negative" + got(*value));
    return std::nullopt;
  }
  if (number == 0 && !zero_allowed) {
    fail(node, path, "must be greater than 0" + got(*value));
    return std::nullopt;
  }
  if (number > kMaxSeconds) {
    fail(node, path, "must be at most 1000000 seconds" + got(*value));
    return std::nullopt;
  }
  return number;
}

std::optional<bool> DocumentReader::boolean(const YAML::Node& node, std::string_view path) {
  const auto value = scalar(node, path, "true or false");
  if (!value) return std::nullopt;
  if (value->text == "true" || value->text == "True" || value->text == "TRUE") return true;
  if (value->text == "false" || value->text == "False" || value->text == "FALSE") return false;
  fail(node, path, "expected true or false" + got(*value));
  return std::nullopt;
}

std::optional<std::int64_t> DocumentReader::price(const YAML::Node& node, std::string_view path) {
  const auto value = scalar(node, path, "a price in USD per 1,000 tokens");
  if (!value) return std::nullopt;
  auto pico_per_token = pricing::parse_price_per_1k(value->text);
  if (!pico_per_token) {
    fail(node, path, "invalid price: " + pico_per_token.error().message + got(*value));
    return std::nullopt;
  }
  return *pico_per_token;
}

std::optional<std::string> DocumentReader::choice(const YAML::Node& node, std::string_view path,
                                                  std::initializer_list<std::string_view> allowed) {
  auto value = scalar(node, path, "a name");
  if (!value) return std::nullopt;
  if (std::find(allowed.begin(), allowed.end(), value->text) != allowed.end()) return std::move(value->text);
  std::string problem = "expected";
  for (std::size_t i = 0; i < allowed.size(); ++i) {
    problem += (i == 0 ? " " : i + 1 == allowed.size() ? " or " : ", ") + std::string(allowed.begin()[i]);
  }
  fail(node, path, problem + got(*value));
  return std::nullopt;
}

std::string DocumentReader::quoted(std::string_view path, std::string_view value) const {
  const auto read = values_read_.find(path);
  const bool echo_allowed = read == values_read_.end() ? !is_secret_path(path) : read->second.echo_allowed;
  return echo_allowed ? "`" + std::string(value) + "`" : std::string("the value");
}

std::string DocumentReader::error_text() const {
  std::string text;
  for (const std::string& error : errors_) {
    if (!text.empty()) text += '\n';
    text += error;
  }
  return text;
}

}  // namespace turnout::config
