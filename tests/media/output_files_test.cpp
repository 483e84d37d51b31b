// Output naming (ComfyUI's counter scheme), prefix confinement and atomic writes.
#include "media/output_files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"

namespace fs = std::filesystem;
using namespace wan::media;

namespace {

// A fresh folder removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("wan_media_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string str() const { return path.string(); }
};

void touch(const fs::path& p, const std::string& content = "x") {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << content;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::set<std::string> entries(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

}  // namespace

TEST(OutputFiles, CounterContinuesFromHighestExistingNumber) {
  TempDir dir;
  touch(dir.path / "wan_00001_.png");
  touch(dir.path / "wan_00007_.mp4");         // formats share one counter sequence
  touch(dir.path / "wan_extra_00099_.png");   // "<name>_" + non-number counts as 0
  touch(dir.path / "wanx_00050_.png");        // another prefix
  touch(dir.path / "other_00100_.png");
  OutputTarget target = resolve_output_target(dir.str(), "wan");
  EXPECT_EQ(target.counter, 8);
  EXPECT_EQ(target.subfolder, "");
  EXPECT_EQ(counter_name("wan", 8, "webp"), "wan_00008_.webp");
  EXPECT_EQ(counter_name("wan", 123456, ""), "wan_123456_");

  SavedOutput saved = save_with_counter(dir.str(), "wan", "webp", 0, 0, [](const std::string& t) {
    std::ofstream(t) << "new";
  });
  EXPECT_EQ(saved.filename, "wan_00008_.webp");
  EXPECT_EQ(slurp(saved.path), "new");
  EXPECT_EQ(resolve_output_target(dir.str(), "fresh").counter, 1);
}

TEST(OutputFiles, SubfoldersInPrefixAreCreatedAndNormalized) {
  TempDir dir;
  OutputTarget a = resolve_output_target(dir.str(), "videos/run1/wan");
  EXPECT_EQ(a.subfolder, "videos/run1");
  EXPECT_EQ(a.name, "wan");
  EXPECT_TRUE(fs::is_directory(dir.path / "videos/run1"));
  OutputTarget b = resolve_output_target(dir.str(), "x/../b/./wan");
  EXPECT_EQ(b.subfolder, "b");
  OutputTarget c = resolve_output_target(dir.str(), "%width%x%height%/wan", 64, 48);
  EXPECT_EQ(c.subfolder, "64x48");
}

TEST(OutputFiles, RejectsPrefixThatEscapesOutputFolder) {
  TempDir dir;
  fs::path out = dir.path / "out";
  fs::create_directories(out);
  for (const char* prefix : {"../wan", "a/../../wan", "/tmp/wan", "", "sub/..", "./"}) {
    EXPECT_THROW(resolve_output_target(out.string(), prefix), wan::ValidationError) << prefix;
    EXPECT_THROW(save_with_counter(out.string(), prefix, "png", 0, 0,
                                   [](const std::string& t) { std::ofstream(t) << "x"; }),
                 wan::ValidationError)
        << prefix;
  }
  EXPECT_EQ(entries(dir.path), std::set<std::string>{"out"});
  EXPECT_TRUE(entries(out).empty());
}

TEST(OutputFiles, NeverOverwritesANameTakenWhileWriting) {
  TempDir dir;
  touch(dir.path / "wan_00002_.png", "first");
  // Another writer claims wan_00003_ while this one is still encoding.
  SavedOutput saved = save_with_counter(dir.str(), "wan", "png", 0, 0, [&](const std::string& t) {
    touch(dir.path / "wan_00003_.png", "concurrent");
    std::ofstream(t) << "mine";
  });
  EXPECT_EQ(saved.filename, "wan_00004_.png");
  EXPECT_EQ(slurp(dir.path / "wan_00002_.png"), "first");
  EXPECT_EQ(slurp(dir.path / "wan_00003_.png"), "concurrent");
  EXPECT_EQ(slurp(saved.path), "mine");
  // Folders (PNG frame sets) take part in the same sequence and are not replaced either.
  SavedOutput folder = save_with_counter(dir.str(), "wan", "", 0, 0, [&](const std::string& t) {
    fs::create_directories(dir.path / "wan_00005_");
    fs::create_directories(t);
    touch(fs::path(t) / "frame.png", "f");
  });
  EXPECT_EQ(folder.filename, "wan_00006_");
  EXPECT_TRUE(fs::exists(dir.path / "wan_00006_" / "frame.png"));
}

TEST(OutputFiles, FailedWriteLeavesNoFile) {
  TempDir dir;
  touch(dir.path / "keep.txt", "old");
  auto failing = [](const std::string& t) {
    std::ofstream(t) << "partial";
    throw wan::Error("injected failure");
  };
  EXPECT_THROW(save_with_counter(dir.str(), "wan", "mp4", 0, 0, failing), wan::Error);
  EXPECT_THROW(write_atomically((dir.path / "keep.txt").string(), failing), wan::Error);
  EXPECT_EQ(entries(dir.path), std::set<std::string>{"keep.txt"});  // no temporaries either
  EXPECT_EQ(slurp(dir.path / "keep.txt"), "old");                   // the original survives

  auto failing_folder = [](const std::string& t) {
    fs::create_directories(t);
    touch(fs::path(t) / "frame_00000.png");
    throw wan::Cancelled();
  };
  EXPECT_THROW(save_with_counter(dir.str(), "wan", "", 0, 0, failing_folder), wan::Cancelled);
  EXPECT_EQ(entries(dir.path), std::set<std::string>{"keep.txt"});

  write_atomically((dir.path / "keep.txt").string(), [](const std::string& t) {
    std::ofstream(t) << "new";
  });
  EXPECT_EQ(slurp(dir.path / "keep.txt"), "new");
}

TEST(OutputFiles, UnwritableOutputFolderIsAnErrorThatNamesIt) {
  TempDir dir;
  touch(dir.path / "blocker", "a file where a folder should be");
  try {
    save_with_counter((dir.path / "blocker").string(), "wan", "png", 0, 0,
                      [](const std::string& t) { std::ofstream(t) << "x"; });
    FAIL() << "expected an error";
  } catch (const wan::Error& e) {
    EXPECT_NE(std::string(e.what()).find("blocker"), std::string::npos) << e.what();
  }
  EXPECT_EQ(entries(dir.path), std::set<std::string>{"blocker"});
  EXPECT_EQ(slurp(dir.path / "blocker"), "a file where a folder should be");
}
