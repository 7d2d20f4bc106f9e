#include "model_io/safetensors_file.hpp"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tensor/dataset.hpp"

namespace murmur {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian; so is this host's");

namespace {

uint64_t dtype_bytes(const std::string& dtype) {
  static const std::map<std::string, uint64_t> sizes = {
      {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},    {"F64", 8},     {"I64", 8}, {"U64", 8}};
  auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

}  // namespace

void write_safetensors(const std::string& path, const std::vector<safetensors_tensor_ref>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    const uint64_t bytes = static_cast<uint64_t>(shape_numel(t.shape)) * sizeof(float);
    header[t.name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw DataError(path + ": cannot write (" + tmp + " does not open)");
    const uint64_t n = text.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& t : tensors)
      out.write(reinterpret_cast<const char*>(t.values),
                static_cast<std::streamsize>(shape_numel(t.shape) * static_cast<int64_t>(sizeof(float))));
    out.flush();
    if (!out) throw DataError(path + ": write failed (disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw DataError(path + ": cannot rename " + tmp + " into place: " + ec.message());
}

safetensors_contents read_safetensors(const std::string& path) {
  auto fail = [&](const std::string& what) -> DataError { return DataError(path + ": " + what); };
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw fail("is a directory, not a safetensors file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw fail("cannot open (missing or unreadable)");
  in.seekg(0, std::ios::end);
  const auto size_pos = in.tellg();
  if (size_pos < 0) throw fail("cannot read its size");
  const uint64_t size = static_cast<uint64_t>(size_pos);
  in.seekg(0);
  if (size < 8) throw fail("truncated: " + std::to_string(size) + " bytes, less than the 8-byte header length");
  uint64_t header_len = 0;
  in.read(reinterpret_cast<char*>(&header_len), 8);
  if (header_len > size - 8)
    throw fail("header length " + std::to_string(header_len) + " runs past the end of the file (" +
               std::to_string(size) + " bytes): truncated, or not a safetensors file");
  if (header_len > safetensors_max_header)
    throw fail("header length " + std::to_string(header_len) + " exceeds the " +
               std::to_string(safetensors_max_header) + "-byte limit");
  if (header_len < 2) throw fail("header of " + std::to_string(header_len) + " bytes cannot be a JSON object");
  std::string text(header_len, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_len));
  if (!in) throw fail("cannot read the header");
  const nlohmann::json header = nlohmann::json::parse(text, nullptr, false);
  if (header.is_discarded()) throw fail("the header is not valid JSON");
  if (!header.is_object()) throw fail("the header is not a JSON object");

  safetensors_contents c;
  const uint64_t data_size = size - 8 - header_len;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) throw fail("__metadata__ is not an object");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) throw fail("__metadata__ value of '" + k + "' is not a string");
        c.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& what) { return fail("tensor '" + name + "': " + what); };
    if (!entry.is_object()) throw bad("entry is not an object");
    for (const auto& [k, v] : entry.items())
      if (k != "dtype" && k != "shape" && k != "data_offsets") throw bad("unexpected field '" + k + "'");
    if (!entry.contains("dtype") || !entry["dtype"].is_string()) throw bad("no dtype string");
    if (!entry.contains("shape") || !entry["shape"].is_array()) throw bad("no shape array");
    if (!entry.contains("data_offsets") || !entry["data_offsets"].is_array() || entry["data_offsets"].size() != 2 ||
        !entry["data_offsets"][0].is_number_unsigned() || !entry["data_offsets"][1].is_number_unsigned())
      throw bad("data_offsets is not two non-negative integers");
    safetensors_entry t;
    t.name = name;
    t.dtype = entry["dtype"].get<std::string>();
    const uint64_t elem = dtype_bytes(t.dtype);
    if (!elem) throw bad("unknown dtype '" + t.dtype + "'");
    uint64_t numel = 1;
    for (const auto& d : entry["shape"]) {
      if (!d.is_number_unsigned()) throw bad("shape holds " + d.dump() + ", not a non-negative integer");
      const uint64_t v = d.get<uint64_t>();
      if (v > (uint64_t{1} << 62) || __builtin_mul_overflow(numel, v, &numel)) throw bad("shape too large");
      t.shape.push_back(static_cast<int64_t>(v));
    }
    t.begin = entry["data_offsets"][0].get<uint64_t>();
    t.end = entry["data_offsets"][1].get<uint64_t>();
    if (t.begin > t.end) throw bad("data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + ") run backwards");
    if (t.end > data_size)
      throw bad("data_offsets end " + std::to_string(t.end) + " beyond the " + std::to_string(data_size) +
                " data bytes of the file (truncated?)");
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(numel, elem, &bytes) || bytes != t.end - t.begin)
      throw bad("shape " + shape_str(t.shape) + " of " + t.dtype + " needs " + std::to_string(numel) + " x " +
                std::to_string(elem) + " bytes, data_offsets give " + std::to_string(t.end - t.begin));
    c.tensors.push_back(std::move(t));
  }
  std::sort(c.tensors.begin(), c.tensors.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t at = 0;
  for (size_t i = 0; i < c.tensors.size(); ++i) {
    const auto& t = c.tensors[i];
    if (t.begin < at)
      throw fail("tensor '" + t.name + "' overlaps tensor '" + c.tensors[i - 1].name + "' (bytes " +
                 std::to_string(t.begin) + " < " + std::to_string(at) + ")");
    if (t.begin > at)
      throw fail(std::to_string(t.begin - at) + " unused bytes before tensor '" + t.name + "' (at " +
                 std::to_string(at) + ")");
    at = t.end;
  }
  if (at != data_size)
    throw fail("the tensors end at data byte " + std::to_string(at) + " but the file holds " +
               std::to_string(data_size) + " (trailing bytes)");
  c.data.resize(data_size);
  in.read(reinterpret_cast<char*>(c.data.data()), static_cast<std::streamsize>(data_size));
  if (!in || static_cast<uint64_t>(in.gcount()) != data_size) throw fail("cannot read the tensor data");
  return c;
}

}  // namespace murmur
