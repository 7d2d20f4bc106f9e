// Config schema: defaults, TOML parsing, overrides, every error class,
// to_toml round trip, documentation table.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "run/config_schema.hpp"

using namespace murmur;

namespace {

// The ConfigError message thrown by f; fails the test if nothing is thrown.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  FAIL("expected a ConfigError");
  return {};
}

std::string parse_error(const std::string& toml, const std::vector<std::string>& overrides = {}) {
  return error_of([&] { parse_config(toml, "cfg.toml", overrides); });
}

// Exact equality of two configs, key by key (get_key is exact for floats).
void require_same(const RunConfig& a, const RunConfig& b) {
  for (const auto& k : config_keys()) {
    INFO(k);
    REQUIRE(get_key(a, k) == get_key(b, k));
  }
}

}  // namespace

TEST_CASE("empty config gives the RunConfig defaults", "[config]") {
  RunConfig c = parse_config("", "empty.toml", {});
  require_same(c, RunConfig{});
  CHECK(c.seed == 1);
  CHECK(c.model == "mlp");
  CHECK(c.threshold == 0.01);
  CHECK(get_key(c, "gossip.threshold") == "0.01");
  CHECK(get_key(c, "data.dataset") == "fashion-mnist");
  CHECK(get_key(c, "train.batch") == "64");
  CHECK(get_key(c, "train.epochs") == "5");
}

TEST_CASE("config_keys lists every key once, section.key", "[config]") {
  auto keys = config_keys();
  CHECK(keys.size() == 116);  // + gossip.publish, gossip.link_period_max, sim.frames_leave, gossip.threshold_schedule, gossip.threshold_power, gossip.threshold_floor, gossip.link_estimates, gossip.contribution, gossip.contribution_window, pipeline.placement, sim.uplink, gossip.link_tau_exponent, gossip.schedule, sim.link_classes, sim.link_file, sim.link_events, train.eval_subset, sim.slow_peers, sim.slow_factor, offload.* (6), train.device, verify.scheme, verify.segment
  for (size_t i = 0; i < keys.size(); ++i) {
    CHECK(keys[i].find('.') != std::string::npos);
    for (size_t j = i + 1; j < keys.size(); ++j) CHECK(keys[i] != keys[j]);
  }
}

TEST_CASE("a full TOML file sets every key", "[config]") {
  const std::string text = R"(
[run]
seed = 42

[data]
dataset = "synthetic"
dir = "/tmp/data"
train_samples = 6000
test_samples = 1000
partition = "dirichlet"
alpha = 0.3

[model]
arch = "cnn"

[train]
optimizer = "adam"
epochs = 2.5
batch = 32
lr = 0.01
lr_schedule = "constant"
momentum = 0.95
weight_decay = 1e-4
eval_every = 50

[gossip]
mode = "delta"
threshold = 0.002
compressor = "threshold"
trigger = 1e-6
every = 4
gamma = 1
topology = "random"
degree = 3

[sim]
peers = 16
latency_ms = 5
bandwidth_mbps = 0
loss = 0.05
speed_spread = 0.5
step_ms = 2.5
gflops = 100
)";
  RunConfig c = parse_config(text, "full.toml", {});
  CHECK(c.seed == 42);
  CHECK(c.dataset == "synthetic");
  CHECK(c.data_dir == "/tmp/data");
  CHECK(c.train_samples == 6000);
  CHECK(c.test_samples == 1000);
  CHECK(c.partition == "dirichlet");
  CHECK(c.alpha == 0.3);
  CHECK(c.model == "cnn");
  CHECK(c.optimizer == "adam");
  CHECK(c.epochs == 2.5);
  CHECK(c.batch == 32);
  CHECK(c.lr == 0.01);
  CHECK(c.lr_schedule == "constant");
  CHECK(c.momentum == 0.95);
  CHECK(c.weight_decay == 1e-4);
  CHECK(c.eval_every == 50);
  CHECK(c.mode == "delta");
  CHECK(c.threshold == 0.002);
  CHECK(c.compressor == "threshold");
  CHECK(c.trigger == 1e-6);
  CHECK(c.every == 4);
  CHECK(c.gamma == 1.0);  // TOML integer accepted for a float key
  CHECK(c.topology == "random");
  CHECK(c.degree == 3);
  CHECK(c.peers == 16);
  CHECK(c.latency_ms == 5.0);
  CHECK(c.bandwidth_mbps == 0.0);
  CHECK(c.loss == 0.05);
  CHECK(c.speed_spread == 0.5);
  CHECK(c.step_ms == 2.5);
  CHECK(c.gflops == 100.0);
}

TEST_CASE("overrides win over the file and apply in order", "[config]") {
  const std::string text = "[gossip]\nthreshold = 0.5\nmode = \"dense\"\n[model]\narch = \"mlp\"\n";
  RunConfig c = parse_config(text, "cfg.toml",
                             {"gossip.threshold=0.01", "model.arch=cnn", "train.epochs=3",
                              " sim.peers = 9 ", "gossip.mode=\"local_sgd\"", "train.lr=+0.5",
                              "data.dir=/a=b", "train.epochs=7"});
  CHECK(c.threshold == 0.01);
  CHECK(c.model == "cnn");          // strings may be bare
  CHECK(c.mode == "local_sgd");     // ... or quoted
  CHECK(c.epochs == 7.0);           // integer text for a float key; last one wins
  CHECK(c.peers == 9);              // whitespace around key and value ignored
  CHECK(c.lr == 0.5);
  CHECK(c.data_dir == "/a=b");      // split at the first '='
}

TEST_CASE("set_key and get_key", "[config]") {
  RunConfig c;
  set_key(c, "gossip.topology", "torus");
  set_key(c, "run.seed", "123456789012");
  set_key(c, "sim.loss", "0.25");
  CHECK(c.topology == "torus");
  CHECK(c.seed == 123456789012ull);
  CHECK(get_key(c, "sim.loss") == "0.25");
  CHECK(get_key(c, "run.seed") == "123456789012");
  // set_key(get_key(...)) is a no-op for every key.
  RunConfig d = c;
  d.lr = 0.1 + 0.2;
  for (const auto& k : config_keys()) set_key(c, k, get_key(d, k));
  require_same(c, d);
  CHECK(c.lr == d.lr);
  CHECK_THROWS_AS(get_key(c, "gossip.nope"), ConfigError);
}

TEST_CASE("error: unknown key suggests the closest one", "[config]") {
  std::string m = parse_error("[gossip]\ntreshold = 0.1\n");
  CHECK_THAT(m, Catch::Contains("unknown key 'gossip.treshold'"));
  CHECK_THAT(m, Catch::Contains("cfg.toml"));
  CHECK_THAT(m, Catch::Contains("did you mean 'gossip.threshold'?"));

  // Unknown section.
  m = parse_error("[gosip]\nthreshold = 0.1\n");
  CHECK_THAT(m, Catch::Contains("unknown key 'gosip.threshold'"));
  CHECK_THAT(m, Catch::Contains("did you mean 'gossip.threshold'?"));
  m = parse_error("[nonsense]\n");
  CHECK_THAT(m, Catch::Contains("unknown key 'nonsense'"));

  // A key in the wrong section, or at top level.
  m = parse_error("[train]\nseed = 3\n");
  CHECK_THAT(m, Catch::Contains("unknown key 'train.seed'"));
  CHECK_THAT(m, Catch::Contains("did you mean 'run.seed'?"));
  m = parse_error("peers = 3\n");
  CHECK_THAT(m, Catch::Contains("did you mean 'sim.peers'?"));

  // Nothing close: no suggestion, but a pointer to the key list.
  m = parse_error("[sim]\nxyzzyplugh = 1\n");
  CHECK_THAT(m, Catch::Contains("unknown key 'sim.xyzzyplugh'"));
  CHECK_THAT(m, !Catch::Contains("did you mean"));

  // From --set.
  m = parse_error("", {"gossip.treshold=0.1"});
  CHECK_THAT(m, Catch::Contains("unknown key 'gossip.treshold' in --set"));
  CHECK_THAT(m, Catch::Contains("did you mean 'gossip.threshold'?"));
  RunConfig c;
  m = error_of([&] { set_key(c, "sim.peer", "4"); });
  CHECK_THAT(m, Catch::Contains("did you mean 'sim.peers'?"));
}

TEST_CASE("error: wrong type", "[config]") {
  std::string m = parse_error("[train]\nlr = \"fast\"\n");
  CHECK_THAT(m, Catch::Contains("train.lr = \"fast\""));
  CHECK_THAT(m, Catch::Contains("cfg.toml:2"));
  CHECK_THAT(m, Catch::Contains("expected a number"));
  CHECK_THAT(m, Catch::Contains("> 0 and <= 10"));
  CHECK_THAT(m, Catch::Contains("got a string"));

  m = parse_error("[train]\nbatch = 64.5\n");
  CHECK_THAT(m, Catch::Contains("train.batch = 64.5"));
  CHECK_THAT(m, Catch::Contains("expected an integer"));
  CHECK_THAT(m, Catch::Contains("got a float"));

  m = parse_error("[gossip]\nmode = 3\n");
  CHECK_THAT(m, Catch::Contains("gossip.mode = 3"));
  CHECK_THAT(m, Catch::Contains("expected a string"));
  CHECK_THAT(m, Catch::Contains("threshold, dense, local_sgd, delta"));

  m = parse_error("[sim]\npeers = true\n");
  CHECK_THAT(m, Catch::Contains("sim.peers = true"));
  CHECK_THAT(m, Catch::Contains("got a boolean"));

  m = parse_error("sim = 3\n");
  CHECK_THAT(m, Catch::Contains("expected a table [sim]"));

  m = parse_error("", {"train.batch=lots"});
  CHECK_THAT(m, Catch::Contains("train.batch = lots in --set"));
  CHECK_THAT(m, Catch::Contains("expected an integer (>= 1 and <= 65536)"));
  m = parse_error("", {"train.batch=64.0"});
  CHECK_THAT(m, Catch::Contains("expected an integer"));
  m = parse_error("", {"train.lr=0.1x"});
  CHECK_THAT(m, Catch::Contains("train.lr = 0.1x in --set"));
  CHECK_THAT(m, Catch::Contains("expected a number"));
  m = parse_error("", {"train.batch=99999999999999999999"});
  CHECK_THAT(m, Catch::Contains("too large"));
}

TEST_CASE("verify.rate takes a number or auto", "[config][verify]") {
  CHECK(get_key(RunConfig{}, "verify.rate") == "auto");
  RunConfig c = parse_config("[verify]\nrate = 0.25\n", "cfg.toml");
  CHECK(c.verify_rate == 0.25);
  c = parse_config("[verify]\nrate = \"auto\"\n", "cfg.toml", {});
  CHECK(get_key(c, "verify.rate") == "auto");
  c = parse_config("[verify]\nrate = 0\n", "cfg.toml", {"verify.rate=auto"});
  CHECK(c.verify_rate == RunConfig{}.verify_rate);
  set_key(c, "verify.rate", "0.5");
  CHECK(get_key(c, "verify.rate") == "0.5");
  // The TOML form reads back.
  CHECK_THAT(to_toml(RunConfig{}), Catch::Contains("\nrate = \"auto\"\n"));
  require_same(parse_config(to_toml(RunConfig{}), "back.toml"), RunConfig{});
  // Any other word, and the value auto stands for, are errors naming both forms.
  std::string m = parse_error("[verify]\nrate = \"often\"\n");
  CHECK_THAT(m, Catch::Contains("verify.rate = \"often\"") && Catch::Contains("auto, or >= 0 and <= 1") &&
                    Catch::Contains("got a string"));
  m = parse_error("", {"verify.rate=-1"});
  CHECK(m == "verify.rate = -1 in --set: must be auto, or >= 0 and <= 1");
  m = parse_error("", {"verify.rate=Auto"});
  CHECK_THAT(m, Catch::Contains("expected a number (auto, or >= 0 and <= 1)"));
  // Other float keys take no word.
  CHECK_THAT(parse_error("", {"train.lr=auto"}), Catch::Contains("expected a number (> 0 and <= 10)"));
}

TEST_CASE("error: out of range", "[config]") {
  std::string m = parse_error("", {"gossip.threshold=-1"});
  CHECK(m == "gossip.threshold = -1 in --set: must be >= 0");

  m = parse_error("[train]\nepochs = 0\n");
  CHECK_THAT(m, Catch::Contains("train.epochs = 0 in cfg.toml:2: must be > 0 and <= 1000"));
  m = parse_error("[train]\nmomentum = 1.0\n");
  CHECK_THAT(m, Catch::Contains("train.momentum = 1.0"));
  CHECK_THAT(m, Catch::Contains("must be >= 0 and < 1"));
  m = parse_error("[sim]\npeers = 2000\n");
  CHECK_THAT(m, Catch::Contains("sim.peers = 2000"));
  CHECK_THAT(m, Catch::Contains("must be >= 1 and <= 1024"));
  m = parse_error("[run]\nseed = -5\n");
  CHECK_THAT(m, Catch::Contains("run.seed = -5"));
  CHECK_THAT(m, Catch::Contains("must be >= 0"));
  m = parse_error("[gossip]\ngamma = 0\n");
  CHECK_THAT(m, Catch::Contains("must be > 0 and <= 1"));
  m = parse_error("[gossip]\nthreshold = inf\n");
  CHECK_THAT(m, Catch::Contains("gossip.threshold = inf"));
  CHECK_THAT(m, Catch::Contains("finite"));
  m = parse_error("", {"sim.loss=nan"});
  CHECK_THAT(m, Catch::Contains("finite"));

  m = parse_error("", {"model.arch="});
  CHECK_THAT(m, Catch::Contains("model.arch"));
  CHECK_THAT(m, Catch::Contains("non-empty"));

  // Boundaries that are allowed.
  RunConfig c = parse_config("", "cfg.toml",
                             {"train.batch=65536", "train.epochs=1000", "train.momentum=0",
                              "gossip.gamma=1", "sim.speed_spread=10", "sim.bandwidth_mbps=0",
                              "sim.peers=1", "run.seed=0"});
  CHECK(c.batch == 65536);
  CHECK(c.peers == 1);
}

TEST_CASE("error: not one of the enum values", "[config]") {
  std::string m = parse_error("[gossip]\ntopology = \"star\"\n");
  CHECK_THAT(m, Catch::Contains("gossip.topology = \"star\""));
  CHECK_THAT(m, Catch::Contains("cfg.toml"));
  CHECK_THAT(m, Catch::Contains("must be one of ring, torus, exponential, hypercube, random, complete"));
  m = parse_error("", {"train.optimizer=rmsprop"});
  CHECK_THAT(m, Catch::Contains("train.optimizer = rmsprop in --set: must be one of sgd, adam"));
  m = parse_error("", {"data.dataset=mnist"});
  CHECK_THAT(m, Catch::Contains("fashion-mnist, synthetic"));
  m = parse_error("", {"data.partition=skewed"});
  CHECK_THAT(m, Catch::Contains("iid, dirichlet"));
  m = parse_error("", {"train.lr_schedule=step"});
  CHECK_THAT(m, Catch::Contains("constant, cosine"));
}

TEST_CASE("error: malformed TOML and malformed override", "[config]") {
  std::string m = parse_error("[gossip]\nthreshold = = 3\n");
  CHECK_THAT(m, Catch::Contains("malformed TOML in cfg.toml:2:"));
  m = parse_error("[train\nlr = 1\n");
  CHECK_THAT(m, Catch::Contains("malformed TOML in cfg.toml:1:"));
  m = parse_error("[train]\nlr = 0.1\nlr = 0.2\n");  // duplicate key
  CHECK_THAT(m, Catch::Contains("malformed TOML in cfg.toml:3:"));

  m = parse_error("", {"gossip.threshold"});
  CHECK_THAT(m, Catch::Contains("malformed override 'gossip.threshold' in --set"));
  CHECK_THAT(m, Catch::Contains("key=value"));
  m = parse_error("", {"=3"});
  CHECK_THAT(m, Catch::Contains("malformed override '=3'"));
}

TEST_CASE("error: cross-key topology checks", "[config]") {
  std::string m = parse_error("[gossip]\ntopology = \"random\"\ndegree = 8\n[sim]\npeers = 8\n");
  CHECK_THAT(m, Catch::Contains("gossip.topology = random with sim.peers = 8 in cfg.toml"));
  CHECK_THAT(m, Catch::Contains("gossip.degree < sim.peers"));
  m = parse_error("[gossip]\ntopology = \"random\"\ndegree = 3\n[sim]\npeers = 7\n");
  CHECK_THAT(m, Catch::Contains("sim.peers * gossip.degree to be even"));
  CHECK_THAT(m, Catch::Contains("7 * 3 = 21"));
  m = parse_error("[gossip]\ntopology = \"torus\"\n", {"sim.peers=8"});
  CHECK_THAT(m, Catch::Contains("gossip.topology = torus with sim.peers = 8"));
  CHECK_THAT(m, Catch::Contains("--set"));
  CHECK_THAT(m, Catch::Contains("r * c with r >= 3 and c >= 3"));
  m = parse_error("", {"gossip.topology=torus", "sim.peers=7"});
  CHECK_THAT(m, Catch::Contains("torus"));

  // Valid combinations.
  auto ok = [](std::vector<std::string> o) { return parse_config("", "cfg.toml", o); };
  CHECK(ok({"gossip.topology=torus", "sim.peers=9"}).peers == 9);
  CHECK(ok({"gossip.topology=torus", "sim.peers=12"}).peers == 12);
  CHECK(ok({"gossip.topology=random", "sim.peers=8", "gossip.degree=3"}).degree == 3);
  CHECK(ok({"gossip.topology=ring", "sim.peers=2"}).peers == 2);
  for (const char* t : {"ring", "torus", "exponential", "hypercube", "random", "complete"})
    CHECK(ok({std::string("gossip.topology=") + t, "sim.peers=1"}).peers == 1);

  // The one-peer schedule: hypercube only, host-side modes without detection or update attacks.
  CHECK(ok({"gossip.schedule=one_peer", "gossip.topology=hypercube", "gossip.robust=none", "sim.peers=6"})
            .gossip_schedule == "one_peer");
  CHECK(ok({"gossip.schedule=one_peer", "gossip.topology=hypercube", "gossip.clip_scale=1"}).clip_scale == 1);
  m = parse_error("", {"gossip.schedule=one_peer", "gossip.topology=hypercube"});
  CHECK_THAT(m, Catch::Contains("gossip.robust = clipped_gossip with gossip.clip_scale = 0.5"));
  CHECK_THAT(m, Catch::Contains("set gossip.robust = none"));
  m = parse_error("", {"gossip.schedule=one_peer"});
  CHECK_THAT(m, Catch::Contains("gossip.schedule = one_peer with gossip.topology = ring"));
  CHECK_THAT(m, Catch::Contains("hypercube"));
  m = parse_error("", {"gossip.schedule=one_peer", "gossip.topology=hypercube", "gossip.mode=delta"});
  CHECK_THAT(m, Catch::Contains("gossip.mode = delta with gossip.schedule = one_peer"));
  m = parse_error("", {"gossip.schedule=one_peer", "gossip.topology=hypercube", "detect.method=rank"});
  CHECK_THAT(m, Catch::Contains("detect.method = rank with gossip.schedule = one_peer"));
  // gossip.link_estimates = follow_mix moves a one-peer link's estimates with the plain pair mix only.
  CHECK(ok({"gossip.schedule=one_peer", "gossip.topology=hypercube", "gossip.robust=none",
            "gossip.link_estimates=follow_mix"})
            .link_estimates == "follow_mix");
  m = parse_error("", {"gossip.link_estimates=follow_mix", "gossip.robust=none"});
  CHECK_THAT(m, Catch::Contains("gossip.link_estimates = follow_mix"));
  CHECK_THAT(m, Catch::Contains("gossip.schedule = one_peer"));
  m = parse_error("", {"gossip.schedule=one_peer", "gossip.topology=hypercube", "gossip.clip_scale=1",
                       "gossip.link_estimates=follow_mix"});
  CHECK_THAT(m, Catch::Contains("gossip.robust = none"));
  // gossip.threshold_schedule = lr scales the threshold mode's tau by the cosine lr.
  CHECK(ok({"gossip.threshold_schedule=lr", "gossip.threshold_power=0.5", "gossip.threshold_floor=0.2"})
            .threshold_floor == 0.2);
  m = parse_error("", {"gossip.threshold_schedule=lr", "gossip.mode=delta"});
  CHECK_THAT(m, Catch::Contains("gossip.threshold_schedule = lr with gossip.mode = delta"));
  m = parse_error("", {"gossip.threshold_schedule=lr", "train.lr_schedule=constant"});
  CHECK_THAT(m, Catch::Contains("train.lr_schedule = constant"));
  m = parse_error("", {"gossip.threshold_floor=0"});
  CHECK_THAT(m, Catch::Contains("gossip.threshold_floor"));

  // set_key alone does not run cross-key checks; validate_config does.
  RunConfig c;
  set_key(c, "gossip.topology", "torus");
  m = error_of([&] { validate_config(c, "sweep"); });
  CHECK_THAT(m, Catch::Contains("in sweep"));
}

TEST_CASE("load_config reads a file and names the path when it cannot", "[config]") {
  std::string m = error_of([] { load_config("/nonexistent/dir/cfg.toml", {}); });
  CHECK_THAT(m, Catch::Contains("/nonexistent/dir/cfg.toml"));
  m = error_of([] { load_config(".", {}); });
  CHECK_THAT(m, Catch::Contains("cannot read config file '.'"));

  const std::string path = "test_config_load.toml";
  {
    std::ofstream f(path);
    f << "[sim]\npeers = 4\n[gossip]\ntreshold = 1\n";
  }
  m = error_of([&] { load_config(path, {}); });
  CHECK_THAT(m, Catch::Contains("unknown key 'gossip.treshold' in " + path + ":4"));
  {
    std::ofstream f(path);
    f << "[sim]\npeers = 4\n";
  }
  RunConfig c = load_config(path, {"train.batch=8"});
  CHECK(c.peers == 4);
  CHECK(c.batch == 8);
  std::remove(path.c_str());
}

TEST_CASE("to_toml round-trips through parse_config", "[config]") {
  SECTION("defaults") {
    RunConfig d;
    require_same(parse_config(to_toml(d), "resolved.toml", {}), d);
  }
  SECTION("awkward values") {
    RunConfig c;
    c.seed = 9007199254740993ull;  // not representable as a double
    c.dataset = "synthetic";
    c.data_dir = "C:\\data \"quoted\"\ttab\nnewline \xc3\xa9";
    c.model = "conv(3x3,16) | relu";
    c.epochs = 5;  // a whole float must come back as a float
    c.lr = 0.1 + 0.2;
    c.threshold = 1e-300;
    c.trigger = 1.0 / 3.0;
    c.bandwidth_mbps = 1e20;
    c.latency_ms = 5e-324;  // smallest subnormal
    c.weight_decay = 0.0;
    c.gamma = 1.0;
    c.topology = "torus";
    c.peers = 16;
    c.train_samples = 123456789;
    const std::string text = to_toml(c);
    INFO(text);
    CHECK_THAT(text, Catch::Contains("[gossip]"));
    CHECK_THAT(text, Catch::Contains("epochs = 5.0\n"));
    RunConfig back = parse_config(text, "resolved.toml", {});
    require_same(back, c);
    CHECK(back.seed == c.seed);
    CHECK(back.data_dir == c.data_dir);
    CHECK(back.lr == c.lr);
    CHECK(back.threshold == c.threshold);
    CHECK(back.latency_ms == c.latency_ms);
    CHECK(to_toml(back) == text);
  }
  SECTION("every key appears, under its section") {
    const std::string text = to_toml(RunConfig{});
    for (const auto& k : config_keys()) {
      const size_t dot = k.find('.');
      const std::string section = std::string("[").append(k, 0, dot).append("]");
      const std::string line = std::string("\n").append(k, dot + 1).append(" = ");
      size_t s = text.find(section);
      REQUIRE(s != std::string::npos);
      size_t l = text.find(line, s);
      INFO(k);
      REQUIRE(l != std::string::npos);
      size_t next = text.find("\n[", s + 1);
      CHECK((next == std::string::npos || l < next));
    }
  }
}

TEST_CASE("doc table has a row for every key", "[config]") {
  const std::string doc = config_doc_markdown();
  // The key-usage paragraphs, then the table.
  const size_t table = doc.find("| key | type | default | allowed | used by | meaning |\n");
  REQUIRE(table != std::string::npos);
  CHECK(doc.find('|') == table);
  for (const auto& k : config_keys()) {
    INFO(k);
    CHECK_THAT(doc, Catch::Contains("| `" + k + "` |"));
  }
  CHECK_THAT(doc, Catch::Contains("| `gossip.threshold` | float | `0.01` | >= 0 |"));
  CHECK_THAT(doc, Catch::Contains("| `train.batch` | int | `64` | >= 1 and <= 65536 |"));
  CHECK_THAT(doc, Catch::Contains("`threshold`, `dense`, `local_sgd`, `delta`"));
  size_t rows = 0;
  for (size_t i = table; i < doc.size(); ++i) rows += doc[i] == '\n';
  CHECK(rows == config_keys().size() + 2);
}
