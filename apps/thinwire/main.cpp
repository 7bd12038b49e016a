// thinwire command-line tool: builds the parser from the per-command files and maps every error
// to one `error: ...` line and an exit code (see cli_common.hpp).
#include <algorithm>
#include <exception>
#include <iostream>
#include <new>
#include <string>

#include "cli_common.hpp"
#include "thinwire/core/spec.hpp"

namespace {

// Longest error line: echoed input (a huge token, a binary file) must not flood the terminal.
constexpr std::size_t kMaxErrorChars = 1000;

int report(const std::string& message, int code) {
  std::string line = thinwire::clip_text(message, kMaxErrorChars);
  std::replace(line.begin(), line.end(), '\n', ' ');
  std::replace(line.begin(), line.end(), '\r', ' ');
  std::cerr << "error: " << line << '\n';
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using thinwire::cli::kExitOk;
  using thinwire::cli::kExitRuntime;
  using thinwire::cli::kExitUsage;

  CLI::App app(
      "thinwire: communication-efficient distributed learning.\n"
      "Trains models across workers (threads or OpenMPI) that exchange compressed messages\n"
      "(quantization, sparsification, error feedback), and compresses, inspects and compares\n"
      "codecs on float vectors. Start with 'thinwire train' (defaults: MLP on Fashion-MNIST).",
      "thinwire");
  app.require_subcommand(1);
  app.footer(
      "Run 'thinwire COMMAND --help' for the flags of one command.\n"
      "Exit codes: 0 success, 1 runtime error (file, message), 2 usage error.");
  thinwire::cli::add_codec_commands(app);
  thinwire::cli::add_demo_command(app);
  thinwire::cli::add_train_command(app);
  thinwire::cli::add_report_command(app);
  thinwire::cli::add_bench_command(app);

  try {
    app.parse(argc, argv);
    return kExitOk;
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help: prints the help of the selected (sub)command
  } catch (const CLI::ParseError& e) {
    const auto selected = app.get_subcommands();
    if (selected.empty() && argc > 1 && argv[1][0] != '-') {
      std::string names;
      for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
        names += (names.empty() ? "" : ", ") + sub->get_name();
      }
      return report(std::string("unknown command '") + argv[1] + "' (commands: " + names + ")",
                    kExitUsage);
    }
    const std::string command = selected.empty() ? "" : " " + selected.front()->get_name();
    return report(std::string(e.what()) + " (see 'thinwire" + command + " --help')", kExitUsage);
  } catch (const thinwire::cli::UsageError& e) {
    return report(e.what(), kExitUsage);
  } catch (const std::bad_alloc&) {
    return report("out of memory", kExitRuntime);
  } catch (const std::exception& e) {
    return report(e.what(), kExitRuntime);
  }
}
