// murmur serve / murmur infer: distributed inference. serve runs one stage
// of a model split over stage processes (lan/serve_process.hpp); infer sends
// the rows of a .npy file to stage 0 and prints each row's class and
// probabilities (lan/inference_client.hpp).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <sstream>

#include "cli/prediction_lines.hpp"
#include "cli/commands.hpp"
#include "lan/inference_client.hpp"
#include "lan/serve_process.hpp"
#include "protocols/inference_messages.hpp"
#include "protocols/membership_messages.hpp"
#include "tensor/dataset_files.hpp"

namespace murmur {

namespace {

struct serve_args {
  serve_process_options o;
  std::vector<CLI::Option*> untrained;  // --arch, --seed, --input, --classes: not with --model
  int stage = 0, stages = 1;
  std::string input = "1,28,28";
};

struct infer_args {
  std::string keys, allowlist, connect, listen = "tcp://127.0.0.1:*", file;
  int timeout_ms = 10000, batch = 64;
  bool table = false;
};

// "1,28,28" -> {1, 28, 28}.
Shape parse_shape(const std::string& text, const std::string& option) {
  Shape s;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    try {
      size_t used = 0;
      const long long v = std::stoll(item, &used);
      if (used != item.size() || v < 1 || v > (1 << 20)) throw std::invalid_argument(item);
      s.push_back(v);
    } catch (const std::exception&) {
      throw UsageError(option + " " + text + ": '" + item + "' is not a dimension (1..1048576)");
    }
  }
  if (s.empty() || s.size() > 3) throw UsageError(option + " " + text + ": expected 1 to 3 comma-separated dimensions");
  return s;
}

int run_serve(serve_args& a, const std::atomic<int>& stop) {
  if (a.o.keys_dir.empty()) throw UsageError("serve needs --keys DIR (murmur keygen)");
  if (a.o.allowlist.empty()) throw UsageError("serve needs --allowlist FILE (stage i is key line i)");
  if (a.stages < 1 || a.stages > 64) throw UsageError("--stages " + std::to_string(a.stages) + ": expected 1..64");
  if (a.stage < 0 || a.stage >= a.stages)
    throw UsageError("--stage " + std::to_string(a.stage) + ": expected 0.." + std::to_string(a.stages - 1));
  if (!a.o.listen.empty() && !valid_endpoint(a.o.listen))
    throw UsageError("--listen " + a.o.listen + ": expected tcp://HOST:PORT");
  a.o.stage = static_cast<uint16_t>(a.stage);
  a.o.stages = static_cast<uint16_t>(a.stages);
  if (!a.o.model.model.empty())
    for (const CLI::Option* opt : a.untrained)
      if (opt->count() > 0)
        throw UsageError(opt->get_name() + " is not for --model (the model file says its layers, input and classes)");
  a.o.model.input_shape = parse_shape(a.input, "--input");
  return run_serve_process(a.o, stop);
}

int run_infer(const infer_args& a) {
  if (a.keys.empty()) throw UsageError("infer needs --keys DIR (murmur keygen; its public key on the stages' allowlist)");
  if (a.allowlist.empty()) throw UsageError("infer needs --allowlist FILE (the stages' keys)");
  if (a.file.empty()) throw UsageError("infer needs a FILE.npy of samples");
  if (a.batch < 1 || a.batch > static_cast<int>(max_inference_batch))
    throw UsageError("--batch " + std::to_string(a.batch) + ": expected 1.." + std::to_string(max_inference_batch));
  if (a.timeout_ms < 1) throw UsageError("--timeout-ms must be positive");
  if (!a.connect.empty() && !valid_endpoint(a.connect))
    throw UsageError("--connect " + a.connect + ": expected tcp://HOST:PORT");
  const Tensor x = load_features_file(a.file);
  auto o = inference_client_options_from_files(a.keys, a.allowlist, a.connect);
  o.listen = a.listen;
  o.timeout_ms = a.timeout_ms;
  inference_client client(std::move(o));
  const int64_t rows = x.dim(0);
  for (int64_t begin = 0; begin < rows; begin += a.batch) {
    const int64_t end = std::min(rows, begin + a.batch);
    const Tensor logits = client.infer(x.rows(begin, end));
    prediction_rows p;
    append_predictions(logits, p);
    print_prediction_lines(p, begin, a.table);
  }
  return 0;
}

}  // namespace

verb_run add_serve_verb(CLI::App& murmur, const std::atomic<int>& stop) {
  auto a = std::make_shared<serve_args>();
  CLI::App* v = murmur.add_subcommand("serve", "one stage of a model served over LAN stage processes (murmur infer asks)");
  v->add_option("--stage", a->stage, "this process's stage, 0..stages-1 (default 0)")->type_name("S");
  v->add_option("--stages", a->stages, "how many stage processes the model is split over (default 1)")->type_name("N");
  v->add_option("--split", a->o.split, "cuts before these layers, as pipeline.split (default: balanced)")
      ->type_name("L1,L2,...");
  v->add_option("--model", a->o.model.model,
                "the model to serve: a model file (murmur export, a run's model.safetensors) or a run directory")
      ->type_name("MODEL|RUN_DIR");
  a->untrained = {
      v->add_option("--arch", a->o.model.arch, "without --model: the model, as model.arch (default mlp)")
          ->type_name("SPEC"),
      v->add_option("--seed", a->o.model.seed, "without --model: weights initialised as train.init_seed (default 1)")
          ->type_name("N"),
      v->add_option("--input", a->input, "without --model: per-sample input shape (default 1,28,28)")
          ->type_name("C,H,W"),
      v->add_option("--classes", a->o.model.num_classes, "without --model: output classes (default 10)")
          ->type_name("K")};
  v->add_option("--keys", a->o.keys_dir, "directory holding this stage's peer.key and peer.pub (required)")
      ->type_name("DIR");
  v->add_option("--allowlist", a->o.allowlist,
                "authorized_peers file: stage i is key line i with its tcp://HOST:PORT; other lines are clients "
                "(required)")
      ->type_name("FILE");
  v->add_option("--listen", a->o.listen, "address to bind (default: this stage's allowlist line)")
      ->type_name("tcp://ADDR:PORT");
  v->add_flag("--quiet", a->o.quiet, "no line per refused frame (the summary stays)");
  v->footer(
      "Runs until Ctrl-C or SIGTERM, then prints a summary line (requests, answers, refusals by reason) and\n"
      "exits 130/143. Keys not on the allowlist are refused at the handshake; malformed frames are dropped and\n"
      "counted. Every stage process must be given the same model, --stages and --split.\n"
      "A model file's metadata says its layers, input shape and classes (--arch, --seed, --input and --classes\n"
      "serve an untrained model instead).\n\n"
      "Example:\n"
      "  murmur serve --stage 0 --stages 2 --model runs/fmnist-cnn/model.safetensors --keys k0 --allowlist serve_peers\n"
      "  (and --stage 1 --keys k1 on the second machine; then murmur infer --keys kc ... samples.npy)");
  return [a, &stop] { return run_serve(*a, stop); };
}

verb_run add_infer_verb(CLI::App& murmur) {
  auto a = std::make_shared<infer_args>();
  CLI::App* v = murmur.add_subcommand("infer", "ask served stages (murmur serve) for the class of each row of a .npy");
  v->add_option("FILE", a->file, "samples: .npy (float32 or uint8; [N,C,H,W], [N,H,W] or [N,D]) or IDX, as predict")
      ->type_name("FILE.npy");
  v->add_option("--keys", a->keys, "directory holding the client's peer.key and peer.pub (required)")->type_name("DIR");
  v->add_option("--allowlist", a->allowlist, "the stages' authorized_peers file (required)")->type_name("FILE");
  v->add_option("--connect", a->connect, "stage 0 (default: the endpoint on the allowlist's first line)")
      ->type_name("tcp://HOST:PORT");
  v->add_option("--listen", a->listen,
                "where the last stage sends the answers; an address it can reach (default tcp://127.0.0.1:*)")
      ->type_name("tcp://ADDR:PORT");
  v->add_option("--batch", a->batch, "rows per request (default 64)")->type_name("B");
  v->add_option("--timeout-ms", a->timeout_ms, "how long to wait for each answer (default 10000)")->type_name("MS");
  v->add_flag("--table", a->table, "a table (row, class, its probability, all probabilities) instead of JSON lines");
  v->footer(
      "Prints one line per row, as murmur predict: {\"row\": i, \"class\": k, \"probabilities\": [p0, p1, ...]}.\n\n"
      "Example:\n  murmur infer --keys kc --allowlist serve_peers --connect tcp://10.0.0.1:6000 samples.npy");
  return [a] { return run_infer(*a); };
}

}  // namespace murmur
