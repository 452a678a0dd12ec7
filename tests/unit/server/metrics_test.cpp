// Metrics: the model label is capped, so client-chosen model names cannot grow /metrics
// without bound; every request is still counted.
#include "server/metrics.hpp"

#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>

namespace {

using turnout::server::Metrics;
using turnout::server::RequestObservation;

RequestObservation call_to(const std::string& model) {
  RequestObservation obs;
  obs.model = model;
  obs.route = "explicit";
  obs.status = 404;
  obs.prompt_tokens = 3;
  return obs;
}

// Sums turnout_requests_total per model label in the rendered text (the labels used here
// hold no quotes, so the value ends at the first one).
std::map<std::string, unsigned long> requests_by_model(const std::string& text) {
  const std::string prefix = "turnout_requests_total{model=\"";
  std::map<std::string, unsigned long> counts;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with(prefix)) continue;
    const std::string model = line.substr(prefix.size(), line.find('"', prefix.size()) - prefix.size());
    counts[model] += std::stoul(line.substr(line.rfind(' ') + 1));
  }
  return counts;
}

TEST(Metrics, ModelLabelsAreCappedAndTheRestCountedAsOther) {
  Metrics metrics;
  const std::size_t distinct = Metrics::kMaxModelLabels + 50;
  for (std::size_t i = 0; i < distinct; ++i) metrics.record_request(call_to("client-model-" + std::to_string(i)));
  metrics.record_request(call_to("client-model-0"));  // a name seen before the cap keeps its label

  const auto counts = requests_by_model(metrics.render());
  EXPECT_EQ(counts.size(), Metrics::kMaxModelLabels + 1);  // the first names, plus "other"
  EXPECT_EQ(counts.at("client-model-0"), 2U);
  EXPECT_EQ(counts.at("other"), 50U);
  EXPECT_FALSE(counts.contains("client-model-" + std::to_string(distinct - 1)));
  unsigned long total = 0;
  for (const auto& [model, n] : counts) total += n;
  EXPECT_EQ(total, distinct + 1);  // nothing lost
}

TEST(Metrics, BelowTheCapEveryModelHasItsOwnLabel) {
  Metrics metrics;
  for (const char* model : {"gpt-4o", "gpt-4o-mini", "gpt-3.5-turbo"}) metrics.record_request(call_to(model));
  const auto counts = requests_by_model(metrics.render());
  EXPECT_EQ(counts.size(), 3U);
  EXPECT_FALSE(counts.contains("other"));
}

}  // namespace
