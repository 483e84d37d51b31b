// Hostile weight files: truncated or forged safetensors, zip and pickle data. Each is a LoadError
// naming the file; no size read from a file is used before it is checked.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "core/error.h"
#include "io/restricted_unpickler.h"
#include "io/safetensors.h"
#include "io/tensor_index.h"
#include "io/torch_zip.h"
#include "test_util.h"

namespace wan::io {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;  // pickles hold NUL bytes

struct Scratch {
  fs::path dir = fs::temp_directory_path() / ("wan_hostile_weights_" + std::to_string(::getpid()));
  Scratch() { fs::create_directories(dir); }
  ~Scratch() { fs::remove_all(dir); }
  std::string write(const std::string& name, const std::string& bytes) const {
    std::ofstream(dir / name, std::ios::binary) << bytes;
    return (dir / name).string();
  }
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string with_header(const std::string& header, size_t data_bytes = 0) {
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(uint64_t(header.size()) >> (8 * i)));
  return out + header + std::string(data_bytes, '\0');
}

// Every prefix of a valid file, read both ways: a LoadError or (for the whole file) the tensors.
void expect_every_truncation_refused(const Scratch& scratch, const std::string& whole,
                                     const std::string& ext) {
  const size_t step = std::max<size_t>(1, whole.size() / 200);
  for (size_t cut = 0; cut < whole.size(); cut += step) {
    const std::string path = scratch.write("cut" + ext, whole.substr(0, cut));
    EXPECT_THROW(load_tensors(path), LoadError) << "cut at " << cut;
    EXPECT_THROW(read_tensor_infos(path), LoadError) << "cut at " << cut;
  }
}

TEST(HostileWeights, TruncatedSafetensorsAreLoadErrors) {
  Scratch scratch;
  const std::string path = (scratch.dir / "whole.safetensors").string();
  save_safetensors(path, {{"a", at::arange(40, at::kFloat)}, {"b", at::ones({3, 5}, at::kHalf)}},
                   {{"note", "x"}});
  const std::string whole = slurp(path);
  EXPECT_EQ(load_tensors(path).size(), 2u);
  expect_every_truncation_refused(scratch, whole, ".safetensors");
}

TEST(HostileWeights, ForgedSafetensorsHeadersAreLoadErrors) {
  Scratch scratch;
  const std::string deep = std::string(100000, '[');
  for (const std::string& header : {
           std::string(R"({"t": {"dtype": "F32", "shape": [0, 9223372036854775808], "data_offsets": [0, 0]}})"),
           std::string(R"({"t": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}})"),
           std::string(R"({"t": {"dtype": "F32", "shape": [1e400], "data_offsets": [0, 4]}})"),
           std::string(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 18446744073709551615]}})"),
           std::string(R"({"__metadata__": {"k": )") + deep,
           std::string("{\"t\xff\": {}}"),
       }) {
    const std::string path = scratch.write("forged.safetensors", with_header(header, 4));
    EXPECT_THROW(read_tensor_infos(path), LoadError) << header.substr(0, 80);
    EXPECT_THROW(load_tensors(path), LoadError) << header.substr(0, 80);
  }
  // A header length past the file or the format's bound.
  std::string len_only(8, '\xff');
  EXPECT_THROW(read_tensor_infos(scratch.write("len.safetensors", len_only + "{}")), LoadError);
}

TEST(HostileWeights, TooManyDimensionsAreRefused) {
  Scratch scratch;
  std::string shape = "1";
  for (int i = 0; i < 100; ++i) shape += ",1";
  const std::string header = R"({"t": {"dtype": "F32", "shape": [)" + shape + R"(], "data_offsets": [0, 4]}})";
  EXPECT_THROW(read_tensor_infos(scratch.write("rank.safetensors", with_header(header, 4))), LoadError);
}

TEST(HostileWeights, TruncatedAndCorruptTorchZipsAreLoadErrors) {
  Scratch scratch;
  const std::string whole = slurp(testing::data_path("io/small_state_dict.pth"));
  ASSERT_FALSE(whole.empty());
  expect_every_truncation_refused(scratch, whole, ".pth");
  std::mt19937 rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    std::string broken = whole;
    for (int k = 0; k < 8; ++k) broken[rng() % broken.size()] ^= char(1 + rng() % 255);
    const std::string path = scratch.write("flipped.pth", broken);
    try {
      load_tensors(path);
    } catch (const LoadError&) {
    }
  }
}

PickleValuePtr unpickle(const std::string& program) {
  auto storage = [](const PickleValue&, size_t) {
    auto v = std::make_shared<PickleValue>();
    v->kind = PickleValue::Kind::kStorage;
    v->text = "F32";
    v->numel = 16;
    return v;
  };
  return RestrictedUnpickler(reinterpret_cast<const uint8_t*>(program.data()), program.size(),
                             "test.pkl", storage)
      .load();
}

TEST(HostileWeights, PickleNestingAndCyclesAreRefused) {
  // ((((...)))) one byte per level: EMPTY_TUPLE then TUPLE1 many times.
  for (int depth : {300, 100000, 1000000}) {
    std::string program = "\x80\x02)"s + std::string(depth, '\x85') + "."s;
    EXPECT_THROW(unpickle(program), LoadError) << depth;
  }
  std::string nested_lists = "\x80\x02"s;
  for (int i = 0; i < 100000; ++i) nested_lists += "]"s;
  for (int i = 0; i < 99999; ++i) nested_lists += "a"s;
  EXPECT_THROW(unpickle(nested_lists + "."s), LoadError);
  // A list appended to itself (via the memo), and one changed after it was put in another.
  EXPECT_THROW(unpickle("\x80\x02]q\x00h\x00"s "a."s), LoadError);
  EXPECT_THROW(unpickle("\x80\x02]q\x00]h\x00"s "ah\x00N"s "a."s), LoadError);
  // Shallow structures still load.
  EXPECT_EQ(unpickle("\x80\x02]q\x00(K\x01K\x02"s "e."s)->items.size(), 2u);
}

TEST(HostileWeights, PickleTensorViewsThatOverflowAreRefused) {
  // _rebuild_tensor_v2(storage, offset, size, stride, ...) with products past 2^63.
  const std::string big = "\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x3f"s;  // LONG1 2^62 - 1
  const std::string persistent = "(X\x07\x00\x00\x00storagetQ"s;           // a pid, then BINPERSID
  const std::string rebuild = std::string("\x80\x02"s) + "ctorch._utils\n_rebuild_tensor_v2\n("s +
                              persistent + "K\x00(K\x03"s + big + "t("s + big + "K\x01t\x89}tR."s;
  EXPECT_THROW(unpickle(rebuild), LoadError);
  // The same program with a small view loads, so the refusal above is the overflow check.
  const std::string small = std::string("\x80\x02"s) + "ctorch._utils\n_rebuild_tensor_v2\n("s +
                            persistent + "K\x00(K\x04tK\x01\x85\x89}tR."s;
  EXPECT_EQ(unpickle(small)->kind, PickleValue::Kind::kTensor);
}

}  // namespace
}  // namespace wan::io

namespace wan::io {
namespace {

// Regression: a storage numel whose byte size wraps past 2^64 (numel 2^62 + 1 of float32 "needs"
// 4 bytes) was taken as fitting its 16-byte record. Made by torch.save, then the pickle patched.
TEST(HostileWeights, StorageSizeThatWrapsIsRefused) {
  const std::string path = testing::data_path("hostile/storage_numel_wraps.pth");
  EXPECT_THROW(read_tensor_infos(path), LoadError);
  EXPECT_THROW(load_tensors(path), LoadError);
}

}  // namespace
}  // namespace wan::io
