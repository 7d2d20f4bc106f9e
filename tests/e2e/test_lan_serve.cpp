// murmur serve on loopback: two stage processes and clients. The answer
// equals local inference of the same model; a stranger's key gets nothing
// and is counted; malformed frames are dropped and counted, and the stage
// still answers afterwards; murmur infer prints a class per row.
// Every wait is bounded and generous (a loaded 2-core machine).
#include <algorithm>
#include <cmath>
#include <random>
#include <thread>

#include "lan/inference_client.hpp"
#include "lan/served_model.hpp"
#include "model_io/model_file.hpp"
#include "lan_harness.hpp"
#include "protocols/curve_keys.hpp"
#include "protocols/inference_messages.hpp"
#include "protocols/zmq_transport.hpp"
#include "tests/npy_bytes.hpp"

using namespace murmur_e2e;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;

// Waits until the log holds `text`; false past the deadline.
bool wait_for_text(const fs::path& log, const std::string& text, clock_type::duration limit) {
  const auto deadline = clock_type::now() + limit;
  while (clock_type::now() < deadline) {
    if (slurp(log).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

murmur::Tensor random_samples(int64_t n, uint32_t seed) {
  murmur::Tensor x({n, 1, 28, 28});
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  for (float& v : x) v = u(gen);
  return x;
}

// The number after "key N" in a summary line ("... handshakes_refused 3, ...").
long long summary_count(const std::string& log, const std::string& key) {
  const auto line = log.find("summary:");
  if (line == std::string::npos) return -1;
  const auto at = log.find(" " + key + " ", line);
  if (at == std::string::npos) return -1;
  return std::stoll(log.substr(at + key.size() + 2));
}

}  // namespace

TEST_CASE("serve on loopback: 2 stages answer as local inference, a stranger and malformed frames are refused",
          "[lan][serve][e2e][slow]") {
  const fs::path dir = fs::path(MURMUR_BINARY_DIR) / "test-runs" / "serve-2";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::vector<std::string> who{"stage0", "stage1", "client", "stranger"};
  for (const auto& w : who) murmur::write_curve_keys((dir / w).string(), murmur::generate_curve_keys());
  const std::vector<int> ports{free_port(), free_port()};
  auto endpoint = [&](int i) { return "tcp://127.0.0.1:" + std::to_string(ports[static_cast<size_t>(i)]); };
  {
    std::ofstream allow(dir / "allowlist");
    allow << murmur::read_curve_keys((dir / "stage0").string()).public_key << " " << endpoint(0) << " stage-0\n"
          << murmur::read_curve_keys((dir / "stage1").string()).public_key << " " << endpoint(1) << " stage-1\n"
          << "# clients\n"
          << murmur::read_curve_keys((dir / "client").string()).public_key << " client\n";
  }
  const std::string allowlist = (dir / "allowlist").string();
  // A model file (safetensors, as murmur export writes): the cnn from seed 7.
  const std::string model_file = (dir / "model.safetensors").string();
  {
    const murmur::served_model m = murmur::load_served_model({"", "cnn", 7, {1, 28, 28}, 10});
    murmur::write_model_file(model_file, murmur::describe_model("cnn", {1, 28, 28}, 10), *m.whole);
  }
  // A cut after the first conv block's pooling (layers 0..3 | 3..10).
  std::vector<pid_t> stages;
  for (int s = 0; s < 2; ++s)
    stages.push_back(spawn_murmur({"serve", "--stage", std::to_string(s), "--stages", "2", "--split", "3", "--model",
                                   model_file, "--keys", (dir / ("stage" + std::to_string(s))).string(),
                                   "--allowlist", allowlist},
                                  dir / ("stage" + std::to_string(s) + ".log")));
  struct reaper {  // no stage outlives the test, whatever fails
    std::vector<pid_t>& p;
    ~reaper() {
      for (pid_t q : p)
        if (q > 0) kill(q, SIGKILL), waitpid(q, nullptr, 0);
    }
  } reap{stages};
  for (int s = 0; s < 2; ++s)
    REQUIRE(wait_for_text(dir / ("stage" + std::to_string(s) + ".log"), "listening on", 60s));

  // Local inference of the same model, read back from its file, evaluation mode.
  const murmur::model_weights w = murmur::read_model_file(model_file);
  const murmur::served_model local{"cnn", {1, 28, 28}, 10, murmur::build_model_from(w)};
  local.whole->set_training(false);
  auto opt = murmur::inference_client_options_from_files((dir / "client").string(), allowlist, "");
  opt.timeout_ms = 60000;
  murmur::inference_client client(opt);
  for (int64_t n : {int64_t{1}, int64_t{5}}) {
    const murmur::Tensor x = random_samples(n, static_cast<uint32_t>(n));
    const murmur::Tensor got = client.infer(x);
    const murmur::Tensor want = local.whole->forward(x).clone();
    REQUIRE(got.shape() == want.shape());
    float worst = 0;
    for (int64_t i = 0; i < got.numel(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
    INFO("batch " << n << ": max |served - local| = " << worst);
    CHECK(worst <= 1e-5f);
  }

  long long want_refused = 0, want_dropped = 0;  // at least, in stage 0's summary
  SECTION("a stranger's key gets no answer and is counted") {
    want_refused = 1;
    auto s = murmur::inference_client_options_from_files((dir / "stranger").string(), allowlist, "");
    s.timeout_ms = 3000;
    murmur::inference_client stranger(s);
    CHECK_THROWS_WITH(stranger.infer(random_samples(1, 9)), Catch::Contains("no answer"));
    CHECK(wait_for_text(dir / "stage0.log", "refused", 30s));
  }

  SECTION("malformed frames are dropped with a reason, and the stage answers afterwards") {
    murmur::zmq_transport_options t;
    t.keys = murmur::read_curve_keys((dir / "client").string());
    for (int s = 0; s < 2; ++s) t.authorized.push_back(murmur::read_curve_keys((dir / ("stage" + std::to_string(s))).string()).public_key);
    murmur::zmq_transport raw(t);
    raw.connect(0, endpoint(0), t.authorized[0]);
    std::vector<std::byte> good;
    murmur::inference_message m;
    m.type = murmur::message_type::inference_request;
    m.request_id = 5;
    m.reply_to = raw.endpoint();
    m.batch = 1;
    m.shape = {1, 28, 28};
    m.values.assign(784, 0.5f);
    murmur::encode_inference_message(m, good);
    std::vector<std::byte> bad_crc = good, garbage(100, std::byte{0x41}), bad_payload = good, activation;
    bad_crc.back() ^= std::byte{1};
    bad_payload[murmur::frame_header_bytes + 1 + 8 + 2 + 1 + 4] = std::byte{9};  // dims 9, checksum resealed below
    {
      std::vector<std::byte> p(bad_payload.begin() + murmur::frame_header_bytes, bad_payload.end());
      murmur::encode_frame(murmur::message_type::inference_request, p, bad_payload);
    }
    m.type = murmur::message_type::inference_activation;  // a client posing as stage -1
    m.client_key = t.keys.public_key;
    murmur::encode_inference_message(m, activation);
    for (const auto* f : {&garbage, &bad_crc, &bad_payload, &activation}) REQUIRE(raw.send(0, *f));
    CHECK(wait_for_text(dir / "stage0.log", "wrong_sender", 30s));
    CHECK(wait_for_text(dir / "stage0.log", "bad_checksum", 30s));
    CHECK(wait_for_text(dir / "stage0.log", "undecodable", 30s));
    CHECK(wait_for_text(dir / "stage0.log", "bad_magic", 30s));
    want_dropped = 4;
    raw.close(1000);
    // Still there: the next request is answered as before.
    const murmur::Tensor x = random_samples(1, 11);
    const murmur::Tensor got = client.infer(x);
    const murmur::Tensor want = local.whole->forward(x).clone();
    for (int64_t i = 0; i < got.numel(); ++i) CHECK(std::fabs(got[i] - want[i]) <= 1e-5f);
  }

  SECTION("murmur infer prints the class and probabilities of every row") {
    const murmur::Tensor x = random_samples(2, 21);
    murmur::test::write_bytes((dir / "x.npy").string(),
                              murmur::test::npy_array_bytes<float>("<f4", {2, 784}, std::vector<float>(x.begin(), x.end())));
    const pid_t p = spawn_murmur({"infer", "--keys", (dir / "client").string(), "--allowlist", allowlist,
                                  "--timeout-ms", "60000", (dir / "x.npy").string()},
                                 dir / "infer.log");
    REQUIRE(wait_until(p, clock_type::now() + 120s) == 0);
    const std::string out = slurp(dir / "infer.log");
    INFO(out);
    const murmur::Tensor want = local.whole->forward(x).clone();
    for (int64_t r = 0; r < 2; ++r) {
      int64_t best = 0;
      for (int64_t c = 1; c < 10; ++c)
        if (want[r * 10 + c] > want[r * 10 + best]) best = c;
      CHECK(out.find("{\"row\": " + std::to_string(r) + ", \"class\": " + std::to_string(best) +
                     ", \"probabilities\": [") != std::string::npos);
    }
    CHECK(std::count(out.begin(), out.end(), '\n') == 2);
  }

  // SIGTERM: each stage prints its summary and exits 143.
  for (int s = 0; s < 2; ++s) kill(stages[static_cast<size_t>(s)], SIGTERM);
  for (int s = 0; s < 2; ++s) {
    CHECK(wait_until(stages[static_cast<size_t>(s)], clock_type::now() + 60s) == 143);
    stages[static_cast<size_t>(s)] = -1;
  }
  const std::string log0 = slurp(dir / "stage0.log"), log1 = slurp(dir / "stage1.log");
  INFO(log0 << log1);
  CHECK(summary_count(log0, "requests") >= 2);
  CHECK(summary_count(log0, "forwarded") >= 2);
  CHECK(summary_count(log1, "answered") >= 2);
  CHECK(summary_count(log0, "send_failed") == 0);
  CHECK(summary_count(log0, "handshakes_refused") >= want_refused);
  CHECK(summary_count(log0, "dropped") >= want_dropped);
  CHECK(summary_count(log1, "dropped") == 0);
}
