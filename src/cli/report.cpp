// report.cpp — `saslguard report top`: the accounts that sent to the most recipients recently,
// read from the event log (UVSQ policyd's contrib/policyd-top20.sh, with messages and first/last
// times). Reads the database named by the configuration; the daemon need not run.
#include <fmt/format.h>
#include <boost/json.hpp>
#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "config/loader.hpp"
#include "eventlog/database.hpp"
#include "eventlog/sql_event_log.hpp"

namespace saslguard::cli {
namespace {

struct TopOptions {
  config::LoadRequest request;
  std::string since = "24h";
  int limit = 20;
  bool as_json = false;
};

// "90s", "30m", "24h", "7d", "2w"; a bare number is hours.
Result<std::chrono::seconds> parseSince(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 9) return fail("--since: expected a duration such as 24h or 7d");
  const auto value = std::stoll(text.substr(0, digits));
  const auto unit = text.substr(digits);
  std::int64_t factor = 0;
  if (unit == "s") factor = 1;
  if (unit == "m") factor = 60;
  if (unit == "h" || unit.empty()) factor = 3600;
  if (unit == "d") factor = 86400;
  if (unit == "w") factor = 7 * 86400;
  if (factor == 0) return fail("--since: unknown unit '" + unit + "' (use s, m, h, d or w)");
  return std::chrono::seconds(value * factor);
}

std::string utc(std::int64_t ms) {
  const std::time_t seconds = ms / 1000;
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

int runTop(TopOptions& options) {
  options.request.environment = config::currentEnvironment();
  auto settings = config::load(options.request);
  if (!settings) {
    std::cerr << settings.error().text() << "\n";
    return 78;
  }
  auto since = parseSince(options.since);
  if (!since) {
    std::cerr << "saslguard: " << since.error().message << "\n";
    return 2;
  }
  auto url = eventlog::urlFrom(*settings);
  if (!url) {
    std::cerr << "saslguard: " << url.error().message << "\n";
    return 78;
  }
  if (url->backend == eventlog::Backend::kSqlite && !std::filesystem::exists(url->sqlite_path)) {
    std::cerr << "saslguard: no event log at " << url->sqlite_path << "\n";
    return 1;
  }
  auto db = eventlog::Database::connect(*url, settings->eventlog.table);
  if (!db) {
    std::cerr << "saslguard: " << db.error().message << "\n";
    return 1;
  }
  const auto from = Clock::now() - *since;
  auto top = (*db)->topSenders(from, options.limit);
  if (!top) {
    std::cerr << "saslguard: " << top.error().message << "\n";
    return 1;
  }
  if (options.as_json) {
    boost::json::array rows;
    for (const auto& row : *top) {
      rows.push_back(boost::json::object{{"account", row.account},
                                         {"recipients", row.recipients},
                                         {"messages", row.messages},
                                         {"first", utc(row.first_ms)},
                                         {"last", utc(row.last_ms)}});
    }
    std::cout << boost::json::serialize(
                     boost::json::object{{"since", utc(toUnixMs(from))}, {"top", std::move(rows)}})
              << "\n";
    return 0;
  }
  std::cout << fmt::format("top senders since {} ({})\n", utc(toUnixMs(from)), url->redacted);
  if (top->empty()) {
    std::cout << "no messages counted\n";
    return 0;
  }
  std::cout << fmt::format("{:<40} {:>10} {:>8}  {:<24}  {}\n", "account", "recipients", "messages",
                           "first", "last");
  for (const auto& row : *top) {
    std::cout << fmt::format("{:<40} {:>10} {:>8}  {:<24}  {}\n", row.account, row.recipients,
                             row.messages, utc(row.first_ms), utc(row.last_ms));
  }
  return 0;
}

}  // namespace

Command addReport(CLI::App& app) {
  auto* report = app.add_subcommand("report", "reports from the event log");
  report->require_subcommand(1);
  auto* top = report->add_subcommand(
      "top", "accounts by recipients in a recent period (UVSQ policyd's top-20 report)");
  auto options = std::make_shared<TopOptions>();
  top->add_option("--since", options->since, "period to look back: 30m, 24h, 7d, 2w")
      ->capture_default_str();
  top->add_option("--limit", options->limit, "accounts shown at most")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  top->add_flag("--json", options->as_json, "print JSON instead of a table");
  config::addFlags(*top, options->request);
  return [top, options] {
    if (!top->parsed()) return 2;
    return runTop(*options);
  };
}

}  // namespace saslguard::cli
