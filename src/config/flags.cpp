// flags.cpp — the command line half of the loader: --config/-c plus one --section-key flag per
// option (--listen is short for --server-listen). CLI11 only collects the text; the loader parses
// and validates it like an environment value, so every source reports errors the same way.
#include <CLI/CLI.hpp>

#include "config/loader.hpp"
#include "config/options.hpp"

namespace saslguard::config {

namespace {

std::string typeLabel(const Option& option) {
  switch (option.type) {
    case OptionType::kString:
      return "TEXT";
    case OptionType::kBool:
      return "BOOL";
    case OptionType::kInt:
      return "INT";
    case OptionType::kStringList:
      return "LIST";
    case OptionType::kEnum: {
      std::string label;
      for (const auto& value : option.allowed) label += (label.empty() ? "" : "|") + value;
      return label;
    }
  }
  return "TEXT";
}

}  // namespace

void addFlags(CLI::App& app, LoadRequest& request) {
  app.add_option(
         "-c,--config",
         [&request](const CLI::results_t& results) {
           request.config_path = results.back();
           request.config_path_given = true;
           return true;
         },
         std::string("configuration file (default ") + kDefaultConfigPath + ", or $" +
             kConfigPathVariable + ")")
      ->type_name("FILE");

  auto* group = app.add_option_group(
      "Settings", "Override any option of the configuration file (also SASLGUARD_<SECTION>_<KEY>)");
  for (const auto& option : options()) {
    std::string names = "--" + option.flagName();
    for (const auto& alias : option.flag_aliases) names += ",--" + alias;
    const auto key = option.name();
    group
        ->add_option(
            names,
            [&request, key](const CLI::results_t& results) {
              for (const auto& text : results) request.flags.values.emplace_back(key, text);
              return true;
            },
            option.help + " (default " + formatDefault(option) + ")")
        ->type_name(typeLabel(option))
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  }
}

}  // namespace saslguard::config
