// The bounded JSON parser and the regular-file reader: every hostile document or file is a typed
// error with a printable message, and nothing is allocated or recursed without a bound.
#include "core/bounded_json.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>

#include "core/error.h"
#include "io/input_file.h"

namespace wan {
namespace {

namespace fs = std::filesystem;

fs::path temp_path(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("wan_bounded_json_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / name;
}

// The message of the ValidationError that parsing `text` throws; fails the test otherwise.
std::string parse_error(const std::string& text, const JsonLimits& limits = {}) {
  try {
    parse_json_bounded(text, "doc", limits);
  } catch (const ValidationError& e) {
    const std::string what = e.what();
    EXPECT_EQ(find_invalid_utf8(what), std::string::npos) << "message is not valid UTF-8";
    EXPECT_LT(what.size(), 2000u) << "message should be short";
    return what;
  }
  ADD_FAILURE() << "expected a ValidationError for a document of " << text.size() << " bytes";
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(BoundedJson, AcceptsOrdinaryDocumentsAndExtremeButRepresentableNumbers) {
  const auto json = parse_json_bounded(
      R"({"seed": 18446744073709551615, "neg": -9223372036854775808, "f": 1.7976931348623157e308,
          "tiny": 4.9e-324, "s": "h\u00e9llo \ud83d\ude00", "a": [[[]]], "b": true, "n": null})",
      "doc");
  EXPECT_EQ(json["seed"].get<uint64_t>(), 18446744073709551615ull);
  EXPECT_EQ(json["neg"].get<int64_t>(), INT64_MIN);
  EXPECT_TRUE(std::isfinite(json["f"].get<double>()));
  EXPECT_EQ(json["s"].get<std::string>(), "h\xc3\xa9llo \xf0\x9f\x98\x80");
}

TEST(BoundedJson, NestingDeeperThanTheLimitIsRefusedAtAnyDepthPastIt) {
  const JsonLimits limits;
  for (int depth : {limits.max_depth + 1, 1000, 30000, 100000}) {
    for (const char* open : {"[", "{\"k\":"}) {
      std::string text;
      for (int i = 0; i < depth; ++i) text += open;
      const auto start = std::chrono::steady_clock::now();
      EXPECT_TRUE(contains(parse_error(text), "nested deeper than")) << depth;
      EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    }
  }
  // At the limit it parses (closed properly).
  std::string ok = std::string(limits.max_depth, '[') + std::string(limits.max_depth, ']');
  EXPECT_NO_THROW(parse_json_bounded(ok, "doc"));
}

TEST(BoundedJson, NumbersOutsideWhatTheProgramCanHoldAreTypedErrors) {
  for (const std::string number : {"1e400", "-1e400", "1E+309", "123456789012345678901234567890",
                                   "-99999999999999999999", "18446744073709551616"}) {
    const std::string error = parse_error("{\"seed\": " + number + "}");
    EXPECT_TRUE(contains(error, "range") || contains(error, "too large")) << number << ": " << error;
  }
  for (size_t digits : {65, 5000, 100000}) {
    const std::string error = parse_error("[" + std::string(digits, '7') + "]");
    EXPECT_TRUE(contains(error, "longer than")) << error;
  }
  // A long fraction is a long number too; inside a string, digits are just text.
  EXPECT_TRUE(contains(parse_error("[0." + std::string(5000, '1') + "]"), "longer than"));
  EXPECT_NO_THROW(parse_json_bounded("[\"" + std::string(5000, '1') + "\"]", "doc"));
}

TEST(BoundedJson, InvalidUtf8IsRefusedWithItsByteOffset) {
  // Every kind of malformed sequence, at random places inside a string and outside of one.
  const std::vector<std::string> bad = {"\xff", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
                                        "\xf4\x90\x80\x80", "\xc3", "\x80", "\xf8\x88\x80\x80\x80"};
  std::mt19937 rng(7);
  for (const auto& seq : bad) {
    for (int trial = 0; trial < 4; ++trial) {
      const std::string prefix = "{\"name\": \"" + std::string(rng() % 50, 'a');
      const std::string text = prefix + seq + "\"}";
      const std::string error = parse_error(text);
      EXPECT_TRUE(contains(error, "invalid UTF-8 at byte " + std::to_string(prefix.size())))
          << error;
    }
  }
  EXPECT_EQ(find_invalid_utf8("ok \xe2\x82\xac"), std::string::npos);
}

TEST(BoundedJson, SizeStringAndValueCountLimitsHold) {
  JsonLimits small;
  small.max_bytes = 100;
  EXPECT_TRUE(contains(parse_error("[" + std::string(200, ' ') + "]", small), "limit"));
  small = JsonLimits{};
  small.max_string_bytes = 10;
  EXPECT_TRUE(contains(parse_error("[\"" + std::string(11, 'x') + "\"]", small), "longer than"));
  EXPECT_TRUE(contains(parse_error("{\"" + std::string(11, 'x') + "\": 1}", small), "longer than"));
  small = JsonLimits{};
  small.max_values = 5;
  EXPECT_TRUE(contains(parse_error("[1,2,3,4,5,6]", small), "values"));
}

TEST(BoundedJson, SyntaxErrorsNameTheOffsetAndNeverQuoteRawBytes) {
  EXPECT_TRUE(contains(parse_error("{\"a\": [1, 2"), "not valid JSON at byte"));
  EXPECT_TRUE(contains(parse_error(""), "not valid JSON"));
  EXPECT_TRUE(contains(parse_error("[1] [2]"), "not valid JSON"));
  const std::string control = parse_error(std::string("[\"a\x01\"]"));
  EXPECT_EQ(control.find('\x01'), std::string::npos) << control;
}

TEST(BoundedJson, PrintableEscapesWhatCannotBePrinted) {
  const std::string shown = printable(std::string("a\xff\x01\xe2\x82\xac", 6));
  EXPECT_EQ(shown, "a\\xFF\\x01\xe2\x82\xac");
  EXPECT_EQ(printable(std::string(1000, 'x'), 10), std::string(10, 'x') + "...");
}

TEST(InputFile, NonRegularFilesAreRefusedWithoutBlocking) {
  const fs::path fifo = temp_path("workflow.fifo");
  fs::remove(fifo);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto reading = std::async(std::launch::async, [&] {
    try {
      read_json_file_bounded(fifo.string());
    } catch (const ValidationError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  });
  if (reading.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);  // unblock the reader
    if (fd >= 0) ::close(fd);
    FAIL() << "reading a FIFO blocked";
  }
  EXPECT_TRUE(contains(reading.get(), "FIFO")) << reading.get();
  fs::remove(fifo);

  EXPECT_THROW(read_json_file_bounded(fs::temp_directory_path().string()), ValidationError);
  EXPECT_THROW(read_json_file_bounded("/nonexistent/workflow.json"), ValidationError);
  EXPECT_THROW(io::read_regular_file("/dev/zero", 1 << 20), LoadError);
  EXPECT_THROW(io::read_regular_file(std::string("a\0b", 3), 1 << 20), LoadError);
  // A "regular" file whose read fails or whose size lies.
  EXPECT_THROW(io::read_regular_file("/proc/self/mem", 1 << 20), LoadError);
  EXPECT_THROW(io::read_regular_file("/proc/self/status", 1 << 20), LoadError);
}

TEST(InputFile, SizeCapAppliesBeforeReading) {
  const fs::path big = temp_path("big.json");
  {
    std::ofstream out(big);
    out << "[" << std::string(4096, ' ') << "]";
  }
  EXPECT_THROW(io::read_regular_file(big.string(), 1024), LoadError);
  EXPECT_EQ(io::read_regular_file(big.string(), 8192).size(), 4098u);
  JsonLimits limits;
  limits.max_bytes = 1024;
  EXPECT_THROW(read_json_file_bounded(big.string(), limits), ValidationError);
  EXPECT_TRUE(read_json_file_bounded(big.string()).is_array());
  fs::remove(big);
}

}  // namespace
}  // namespace wan
