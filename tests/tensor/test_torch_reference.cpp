// Replays PyTorch's numbers (tests/fixtures/torch_reference, written by
// scripts/gen_torch_reference.py; format described there): the same models,
// initial parameters and batch must give the same loss, gradients and
// parameters after SGD and Adam steps. A missing fixture fails the test.
#include <zlib.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tensor/loss.hpp"
#include "tensor/optimizer.hpp"
#include "tensor/sequential.hpp"

using namespace murmur;

namespace {

const std::string kDir = std::string(MURMUR_SOURCE_DIR) + "/tests/fixtures/torch_reference/";

struct Fixture {
  std::map<std::string, std::vector<std::string>> keys;  // key -> values
  std::map<std::string, std::vector<float>> arrays;

  const std::vector<std::string>& at(const std::string& key) const {
    auto it = keys.find(key);
    if (it == keys.end()) FAIL("fixture has no key '" << key << "'");
    return it->second;
  }
  double num(const std::string& key, size_t i = 0) const { return std::stod(at(key).at(i)); }
  // "sgd lr 0.1 momentum 0.9 ...": the value after `name` on line `key`.
  double setting(const std::string& key, const std::string& name) const {
    const auto& v = at(key);
    for (size_t i = 0; i + 1 < v.size(); i += 2)
      if (v[i] == name) return std::stod(v[i + 1]);
    FAIL("fixture line '" << key << "' has no '" << name << "'");
    return 0;
  }
  const std::vector<float>& array(const std::string& key) const {
    auto it = arrays.find(key);
    if (it == arrays.end()) FAIL("fixture has no array '" << key << "'");
    return it->second;
  }
};

std::vector<float> read_gz_floats(const std::string& path, size_t count) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) FAIL("cannot open " << path << " (run scripts/gen_torch_reference.py)");
  std::vector<float> v(count);
  const auto bytes = static_cast<unsigned>(count * sizeof(float));
  const int got = gzread(f, v.data(), bytes);
  char extra;
  const int more = gzread(f, &extra, 1);
  gzclose(f);
  if (got != static_cast<int>(bytes) || more != 0)
    FAIL(path << ": expected exactly " << count << " float32 values");
  return v;  // the fixture is little-endian, as is every platform murmur targets
}

Fixture load(const std::string& name) {
  const std::string path = kDir + name + ".txt";
  std::ifstream in(path);
  if (!in) FAIL("missing fixture " << path << " (run /usr/bin/python3 scripts/gen_torch_reference.py)");
  Fixture fx;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string key, tok;
    ls >> key;
    std::vector<std::string> values;
    while (ls >> tok) values.push_back(tok);
    if (key == "array") {
      REQUIRE(values.size() == 3);
      fx.arrays[values[0]] = read_gz_floats(kDir + values[1], std::stoul(values[2]));
    } else {
      fx.keys[key] = values;
    }
  }
  return fx;
}

// Empty when every |got - want| <= abs + rel * |want|.
std::string compare(const float* got, const std::vector<float>& want, double rel = 1e-5,
                    double abs = 1e-6) {
  std::ostringstream out;
  size_t bad = 0;
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    worst = std::max(worst, err);
    if (!(err <= abs + rel * std::fabs(want[i])) && bad++ < 5)
      out << "[" << i << "] got " << got[i] << " want " << want[i] << "; ";
  }
  if (bad) out << bad << " of " << want.size() << " differ (max abs error " << worst << ")";
  return out.str();
}

void replay(const std::string& name) {
  const Fixture fx = load(name);
  Shape in_shape;
  for (const auto& d : fx.at("input_shape")) in_shape.push_back(std::stoll(d));
  const auto batch = static_cast<int64_t>(fx.num("batch"));
  auto model = build_model(fx.at("spec").at(0), in_shape, static_cast<int64_t>(fx.num("classes")));
  if (fx.keys.count("mode")) {
    REQUIRE(fx.at("mode").at(0) == "eval");
    model->set_training(false);
  }
  const auto& p0 = fx.array("params0");
  REQUIRE(static_cast<size_t>(model->param_count()) == p0.size());

  Shape x_shape = {batch};
  x_shape.insert(x_shape.end(), in_shape.begin(), in_shape.end());
  Tensor x(x_shape);
  const auto& input = fx.array("input");
  REQUIRE(input.size() == static_cast<size_t>(x.numel()));
  std::copy(input.begin(), input.end(), x.begin());
  std::vector<int32_t> labels;
  for (const auto& l : fx.at("labels")) labels.push_back(std::stoi(l));
  REQUIRE(labels.size() == static_cast<size_t>(batch));

  for (const std::string opt_name : {"sgd", "adam"}) {
    INFO(name << " / " << opt_name);
    std::copy(p0.begin(), p0.end(), model->params());
    std::unique_ptr<Optimizer> opt;
    const auto lr = static_cast<float>(fx.setting(opt_name, "lr"));
    const auto wd = static_cast<float>(fx.setting(opt_name, "weight_decay"));
    if (opt_name == "sgd")
      opt = make_sgd(model->param_count(), static_cast<float>(fx.setting("sgd", "momentum")), wd);
    else
      opt = make_adam(model->param_count(), static_cast<float>(fx.setting("adam", "beta1")),
                      static_cast<float>(fx.setting("adam", "beta2")),
                      static_cast<float>(fx.setting("adam", "eps")), wd);
    const int steps = static_cast<int>(fx.setting(opt_name, "steps"));
    REQUIRE(steps >= 1);
    Tensor d;
    for (int k = 1; k <= steps; ++k) {
      INFO("step " << k);
      const std::string sk = std::to_string(k);
      const float loss = softmax_cross_entropy(model->forward(x), labels.data(), d);
      CHECK(loss == Approx(fx.num("loss_" + opt_name + "_" + sk)).epsilon(1e-5));
      model->backward(d);
      // Step 1's gradients are shared by both optimizers and stored once.
      const std::string gkey = (k == 1 ? std::string("sgd") : opt_name) + ".grads" + sk;
      CHECK(compare(model->grads(), fx.array(gkey)) == "");
      opt->step(model->params(), model->grads(), lr);
      CHECK(compare(model->params(), fx.array(opt_name + ".params" + sk)) == "");
    }
  }
}

}  // namespace

TEST_CASE("torch reference: mlp preset (784-256-128-10), SGD and Adam", "[torch]") { replay("mlp"); }

TEST_CASE("torch reference: small CNN, two SGD and Adam steps", "[torch]") { replay("cnn"); }

TEST_CASE("torch reference: strided, padded conv with tanh and sigmoid", "[torch]") { replay("mix"); }

TEST_CASE("torch reference: narrow resnet (groupnorm, nested residual blocks, gap)", "[torch]") {
  replay("resnet");
}

TEST_CASE("torch reference: dropout in eval mode is the identity (model.eval())", "[torch]") {
  replay("dropout_eval");
}
