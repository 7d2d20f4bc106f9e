// murmur config-doc: the table of config keys, as docs/config.md holds it.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.hpp"
#include "run/config_schema.hpp"

namespace murmur {

verb_run add_config_doc_verb(CLI::App& murmur) {
  CLI::App* v = murmur.add_subcommand("config-doc", "print the table of config keys: default, range, meaning (markdown)");
  v->footer("Example:\n  murmur config-doc > docs/config.md");
  return [] {
    std::cout << config_doc_markdown();
    return 0;
  };
}

}  // namespace murmur
