#include "model_io/model_file.hpp"

#include <charconv>
#include <cstring>
#include <stdexcept>

#include "model_io/param_tensors.hpp"
#include "model_io/safetensors_file.hpp"
#include "tensor/dataset.hpp"

namespace murmur {

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& i : items) {
    if (!s.empty()) s += ',';
    s += i;
  }
  return s;
}

std::string shape_text(const Shape& s) {
  std::string t;
  for (auto d : s) {
    if (!t.empty()) t += ',';
    t += std::to_string(d);
  }
  return t;
}

// "a,b,c" of integers >= min; nullopt-like: throws std::invalid_argument.
std::vector<int64_t> parse_ints(const std::string& text, int64_t min) {
  std::vector<int64_t> v;
  size_t start = 0;
  for (;;) {
    const size_t at = text.find(',', start);
    const std::string a = text.substr(start, at == std::string::npos ? std::string::npos : at - start);
    int64_t x = 0;
    auto [p, ec] = std::from_chars(a.data(), a.data() + a.size(), x);
    if (a.empty() || ec != std::errc() || p != a.data() + a.size() || x < min)
      throw std::invalid_argument("'" + text + "' is not a list of integers >= " + std::to_string(min));
    v.push_back(x);
    if (at == std::string::npos) return v;
    start = at + 1;
  }
}

const std::string& meta(const std::map<std::string, std::string>& m, const std::string& key, const std::string& path) {
  auto it = m.find(key);
  if (it == m.end()) throw DataError(path + ": no '" + key + "' in the metadata");
  return it->second;
}

int64_t meta_int(const std::map<std::string, std::string>& m, const std::string& key, const std::string& path,
                 int64_t min) {
  const std::string& text = meta(m, key, path);
  try {
    auto v = parse_ints(text, min);
    if (v.size() == 1 && v[0] < (int64_t{1} << 40)) return v[0];
  } catch (const std::invalid_argument&) {
  }
  throw DataError(path + ": metadata '" + key + "' = '" + text + "' is not an integer >= " + std::to_string(min));
}

const char* const reserved[] = {"format", "spec", "layers", "input_shape", "num_classes",
                                "layer_begin", "layer_end", "layer_count"};

}  // namespace

model_description describe_model(const std::string& spec, const Shape& input_shape, int64_t num_classes,
                                 stage_range r) {
  model_description d;
  d.spec = spec;
  d.input_shape = input_shape;
  d.num_classes = num_classes;
  d.layer_count = build_layers(spec, input_shape, num_classes).size();
  d.layers = r.end == 0 ? stage_range{0, d.layer_count} : r;
  if (d.layers.begin >= d.layers.end || d.layers.end > d.layer_count)
    throw std::invalid_argument("describe_model: layers [" + std::to_string(d.layers.begin) + ", " +
                                std::to_string(d.layers.end) + ") of a model of " + std::to_string(d.layer_count));
  return d;
}

std::pair<int64_t, int64_t> stage_param_span(const Sequential& whole, stage_range r) {
  const int64_t b = whole.layer_param_offset(r.begin);
  const int64_t e = r.end < whole.layer_count() ? whole.layer_param_offset(r.end) : whole.param_count();
  return {b, e};
}

void write_model_file(const std::string& path, const model_description& d, const Sequential& part) {
  const auto items = d.items();
  if (part.layer_count() != d.layers.end - d.layers.begin)
    throw std::invalid_argument("write_model_file: the model has " + std::to_string(part.layer_count()) +
                                " layers, the description " + std::to_string(d.layers.end - d.layers.begin));
  std::map<std::string, std::string> m = d.notes;
  for (const char* k : reserved) m.erase(k);
  m["format"] = model_file_format;
  m["spec"] = d.spec;
  m["layers"] = join(items);
  m["input_shape"] = shape_text(d.input_shape);
  m["num_classes"] = std::to_string(d.num_classes);
  m["layer_begin"] = std::to_string(d.layers.begin);
  m["layer_end"] = std::to_string(d.layers.end);
  m["layer_count"] = std::to_string(d.layer_count);
  std::vector<safetensors_tensor_ref> refs;
  for (const auto& t : param_tensors(part, items, d.layers.begin))
    refs.push_back({t.name, t.shape, part.params() + t.offset});
  write_safetensors(path, refs, m);
}

model_weights read_model_file(const std::string& path) {
  safetensors_contents c = read_safetensors(path);
  const auto& m = c.metadata;
  auto fmt = m.find("format");
  if (fmt == m.end())
    throw DataError(path + ": a safetensors file without murmur's metadata (no 'format'): it does not say "
                    "which model it holds");
  if (fmt->second != model_file_format)
    throw DataError(path + ": format '" + fmt->second + "', expected '" + model_file_format + "'");
  model_weights w;
  model_description& d = w.model;
  d.spec = meta(m, "spec", path);
  try {
    const auto shape = parse_ints(meta(m, "input_shape", path), 1);
    if (shape.size() > 4) throw std::invalid_argument("more than 4 dimensions");
    d.input_shape = shape;
  } catch (const std::invalid_argument& e) {
    throw DataError(path + ": metadata 'input_shape' = '" + m.at("input_shape") + "': " + e.what());
  }
  d.num_classes = meta_int(m, "num_classes", path, 1);
  d.layers.begin = static_cast<size_t>(meta_int(m, "layer_begin", path, 0));
  d.layers.end = static_cast<size_t>(meta_int(m, "layer_end", path, 1));
  d.layer_count = static_cast<size_t>(meta_int(m, "layer_count", path, 1));
  for (const auto& [k, v] : m) {
    bool is_reserved = false;
    for (const char* r : reserved) is_reserved = is_reserved || k == r;
    if (!is_reserved) d.notes[k] = v;
  }
  // The model the metadata describes: the spec must build, and agree with
  // the expanded layer list and the layer count recorded beside it.
  std::vector<std::unique_ptr<Layer>> all;  // unbound: no parameters allocated
  std::vector<std::string> items;
  try {
    items = d.items();
    const std::string& layers = meta(m, "layers", path);
    if (join(items) != layers)
      throw std::invalid_argument("'layers' = '" + layers + "' is not what spec '" + d.spec + "' expands to ('" +
                                  join(items) + "')");
    if (items.size() != d.layer_count)
      throw std::invalid_argument("'layer_count' = " + std::to_string(d.layer_count) + ", the spec has " +
                                  std::to_string(items.size()) + " layers");
    if (d.layers.begin >= d.layers.end || d.layers.end > d.layer_count)
      throw std::invalid_argument("layers [" + std::to_string(d.layers.begin) + ", " + std::to_string(d.layers.end) +
                                  ") are not a part of the " + std::to_string(d.layer_count) + " layers");
    all = build_layers(d.spec, d.input_shape, d.num_classes);
  } catch (const std::invalid_argument& e) {
    throw DataError(path + ": the metadata describes no valid model: " + e.what());
  }
  // The tensors those layers need, named and shaped before anything of the
  // model's size is allocated; then the file's, by name: each present, F32,
  // the right shape, and no others.
  Shape in = d.input_shape;
  for (size_t i = 0; i < d.layers.begin; ++i) in = all[i]->output_shape(in);
  std::vector<const Layer*> mine;
  for (size_t i = d.layers.begin; i < d.layers.end; ++i) mine.push_back(all[i].get());
  const auto want = param_tensors(mine, in, items, d.layers.begin);
  std::map<std::string, const safetensors_entry*> have;
  for (const auto& t : c.tensors) have[t.name] = &t;
  const auto have_all = have;
  for (const auto& t : want) {
    auto it = have.find(t.name);
    if (it == have.end())
      throw DataError(path + ": no tensor '" + t.name + "', which layers '" + d.spec + "' need (shape " +
                      shape_str(t.shape) + ")");
    const safetensors_entry& e = *it->second;
    if (e.dtype != "F32") throw DataError(path + ": tensor '" + t.name + "' is " + e.dtype + ", murmur reads F32 only");
    if (e.shape != t.shape)
      throw DataError(path + ": tensor '" + t.name + "' has shape " + shape_str(e.shape) + ", the model '" + d.spec +
                      "' needs " + shape_str(t.shape));
  }
  for (const auto& t : want) have.erase(t.name);
  if (!have.empty())
    throw DataError(path + ": tensor '" + have.begin()->first + "' is not a parameter of layers [" +
                    std::to_string(d.layers.begin) + ", " + std::to_string(d.layers.end) + ") of '" + d.spec + "'");
  // Every tensor is there, of its size, within the file: the parameters
  // are no larger than the file.
  int64_t total = 0;
  for (const auto& t : want) total += t.numel();
  w.params.assign(static_cast<size_t>(total), 0.f);
  for (const auto& t : want) {
    const safetensors_entry& e = *have_all.at(t.name);
    std::memcpy(w.params.data() + t.offset, c.data.data() + e.begin, e.end - e.begin);
  }
  return w;
}

std::unique_ptr<Sequential> build_model_from(const model_weights& w) {
  const model_description& d = w.model;
  auto part = build_stage_layers(d.spec, d.input_shape, d.num_classes, d.layers);
  if (static_cast<size_t>(part->param_count()) != w.params.size())
    throw std::invalid_argument("build_model_from: " + std::to_string(w.params.size()) + " parameters for a model of " +
                                std::to_string(part->param_count()));
  std::copy(w.params.begin(), w.params.end(), part->params());
  part->set_training(false);
  return part;
}

}  // namespace murmur
