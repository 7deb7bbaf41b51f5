// cnnvis: what a convolutional network sees. Dispatches subcommands and turns the library's typed
// exceptions into one-line messages and exit codes (0 ok, 1 some inputs or the run failed, 2 usage).
#include <cstdlib>
#include <exception>
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "commands.h"
#include "common.h"

#ifndef CNNVIS_VERSION
#define CNNVIS_VERSION "dev"
#endif

namespace cnnvis::cli {
int& command_exit_code() {
  static int code = 0;
  return code;
}
}  // namespace cnnvis::cli

int main(int argc, char** argv) {
  using namespace cnnvis;
  using namespace cnnvis::cli;
  auto logger = spdlog::stderr_color_mt("cnnvis");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%^%l%$: %v");

  GlobalOptions& global = global_options();
  global.argv.assign(argv, argv + argc);
  CLI::App app{"cnnvis " CNNVIS_VERSION ": see what a convolutional network sees"};
  app.set_version_flag("--version", CNNVIS_VERSION);
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default(true);  // --help shows every default
  app.fallthrough();
  app.add_flag("-v,--verbose", global.verbosity, "more log output (-vv for debug)");
  app.add_flag("-q,--quiet", global.quiet, "only errors on stderr");
  app.add_option("--device", global.device, "auto | cpu | cuda | cuda:N (auto = CUDA when available)");
  app.add_option("--threads", global.threads, "CPU threads for LibTorch (0 = all cores)");
  app.add_flag("--fast", global.fast,
               "CPU: oneDNN convolutions, faster, but maps then change in the last bits with --batch-size "
               "(default: batch-invariant kernels, byte-identical maps run after run and across batch sizes)");
  app.add_flag("--native-kernels", global.native_kernels,
               "CPU: batch-invariant convolutions on LibTorch's native kernels instead of oneDNN one image per "
               "call (about half as fast; maps differ from the default in the last bits)");

  setup_models(app);
  setup_layers(app);
  setup_predict(app);
  setup_gradcam(app);
  setup_backprop(app);
  setup_saliency(app);
  setup_occlusion(app);
  setup_rise(app);
  setup_evaluate(app);
  setup_canvases(app);
  setup_train(app);
  setup_demo(app);
  setup_activation_max(app);
  setup_deepdream(app);
  setup_filters(app);
  setup_activations(app);
  setup_tsne(app);
  setup_top_patches(app);
  setup_compare(app);
  setup_merge_manifests(app);
  setup_atlas(app);

  app.parse_complete_callback([&] {
    if (global.quiet) {
      spdlog::set_level(spdlog::level::err);
    } else if (global.verbosity >= 2) {
      spdlog::set_level(spdlog::level::debug);
    } else {
      spdlog::set_level(spdlog::level::info);
    }
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // Same shape as every other error: one line on stderr, exit code 2.
    std::string message = e.what();
    if (app.get_subcommands().empty()) {
      // CLI11 only says that a subcommand is required; name the word that is not one.
      for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--device" || arg == "--threads") {
          ++i;
        } else if (!arg.empty() && arg[0] != '-') {
          message = "unknown command '" + arg + "'";
          break;
        }
      }
    }
    if (auto nl = message.find('\n'); nl != std::string::npos) message.resize(nl);
    spdlog::error("{} (see --help)", message);
    return 2;
  } catch (const UsageError& e) {
    spdlog::error("{}", e.what());
    return 2;
  } catch (const Error& e) {
    spdlog::error("{}", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    spdlog::error("out of memory");
    return 1;
  } catch (const std::exception& e) {
    // Anything else is a bug or an unexpected library failure; keep it to one line.
    std::string message = e.what();
    if (auto nl = message.find('\n'); nl != std::string::npos) message.resize(nl);
    spdlog::error("internal error: {}", message);
    return 1;
  }
  return command_exit_code();
}
