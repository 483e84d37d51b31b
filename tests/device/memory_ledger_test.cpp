#include "device/memory_ledger.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "device/device_manager.h"
#include "device_test_util.h"

namespace wan::device {
namespace {

using testing::make_tiny_net;
using testing::TinyNetImpl;

// Runs three stages against a 1 MiB virtual accelerator: a loader adopting an offloaded model,
// a sampler computing with it, and a stage that fails.
struct LedgerRun {
  DeviceManager devices{[] {
    ComputeDeviceOptions options;
    options.device = "cpu";
    options.reserve = 0;
    options.vram = kMiB;
    return options;
  }()};
  int64_t base = TrackingAllocator::stats(MemoryPool::kVirtual).bytes_current;
  std::shared_ptr<TinyNetImpl> net = make_tiny_net();
  ModelHandle model;

  LedgerRun() {
    devices.ledger().begin_stage("1", "LoadDiT");
    model = devices.adopt(net, Placement::kOffload, "dit");
    devices.ledger().end_stage();

    devices.ledger().begin_stage("2", "Sample");
    {
      auto lease = devices.lease(model, devices.ledger().current_label());
      at::Tensor y = lease.to_cpu(net->forward(lease.to_compute(torch::ones({8, 16}))));
    }
    devices.ledger().end_stage();

    devices.ledger().begin_stage("3", "Decode");
    devices.ledger().end_stage(StageOutcome::failure("vgpu out of memory"));
  }
};

TEST(MemoryLedger, JsonHasStagesInOrderWithBytesModelsTransfersAndOutcome) {
  LedgerRun run;
  const nlohmann::json report = run.devices.ledger().to_json();
  ASSERT_EQ(report["nodes"].size(), 3u);
  const auto& load = report["nodes"][0];
  const auto& sample = report["nodes"][1];
  const auto& decode = report["nodes"][2];
  EXPECT_EQ(load["node"], "1");
  EXPECT_EQ(load["class_type"], "LoadDiT");
  EXPECT_EQ(load["models"]["dit"], "cpu");
  EXPECT_EQ(load["transfers"]["bytes_in"], 0);
  EXPECT_EQ(load["outcome"], "ok");

  EXPECT_EQ(sample["node"], "2");
  EXPECT_EQ(sample["models"]["dit"], "cpu");  // offloaded: back in CPU memory after the node
  EXPECT_EQ(sample["computed_on"]["dit"], "vgpu");
  EXPECT_EQ(sample["transfers"]["bytes_in"], TinyNetImpl::kBytes);
  EXPECT_EQ(sample["transfers"]["bytes_out"], TinyNetImpl::kBytes);
  EXPECT_GE(sample["transfers"]["seconds"].get<double>(), 0.0);
  EXPECT_GT(sample["wall_s"].get<double>(), 0.0);
  // Peak during: weights + input [8,16] + fc1, relu [8,32] + fc2, product [8,8], float32.
  EXPECT_EQ(sample["bytes_peak"]["vgpu"].get<int64_t>() - run.base,
            TinyNetImpl::kBytes + 8 * (16 + 32 + 32 + 8 + 8) * 4);
  EXPECT_EQ(sample["bytes_after"]["vgpu"].get<int64_t>(), run.base);
  EXPECT_TRUE(sample["bytes_after"].contains("cpu"));

  EXPECT_EQ(decode["outcome"], "error");
  EXPECT_EQ(decode["error"], "vgpu out of memory");
  EXPECT_TRUE(decode["computed_on"].empty());

  EXPECT_EQ(report["devices"][0]["name"], "vgpu");
  EXPECT_EQ(report["devices"][0]["bytes_capacity"], kMiB);
  EXPECT_EQ(report["devices"][1]["name"], "cpu");
  EXPECT_TRUE(report["devices"][1]["bytes_capacity"].is_null());
  EXPECT_EQ(report["models"]["dit"]["bytes"], TinyNetImpl::kBytes);
  EXPECT_EQ(report["models"]["dit"]["placement"], "offload");
}

// Checks that every element opened is closed in order (a small XML well-formedness check).
::testing::AssertionResult well_formed(const std::string& xml) {
  std::vector<std::string> open;
  std::regex tag(R"(<(/?)([a-zA-Z][\w:-]*)([^>]*?)(/?)>)");
  for (auto it = std::sregex_iterator(xml.begin(), xml.end(), tag); it != std::sregex_iterator();
       ++it) {
    const auto& m = *it;
    const std::string name = m[2];
    if (!m[1].str().empty()) {
      if (open.empty() || open.back() != name) {
        return ::testing::AssertionFailure() << "unexpected </" << name << ">";
      }
      open.pop_back();
    } else if (m[4].str().empty()) {
      open.push_back(name);
    }
  }
  if (!open.empty()) return ::testing::AssertionFailure() << "<" << open.back() << "> not closed";
  return ::testing::AssertionSuccess();
}

TEST(MemoryLedger, SvgIsWellFormedWithBandsHeldLineAndCap) {
  LedgerRun run;
  const std::string svg = run.devices.ledger().to_svg();
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_NE(svg.find("<rect data-band=\"dit\""), std::string::npos);
  EXPECT_NE(svg.find("<rect data-band=\"activations\""), std::string::npos);
  EXPECT_NE(svg.find("<polyline data-line=\"held\""), std::string::npos);
  EXPECT_NE(svg.find("<line id=\"cap-vgpu\""), std::string::npos);
  EXPECT_EQ(svg.find("id=\"cap-cpu\""), std::string::npos);  // the CPU has no cap
  EXPECT_NE(svg.find("2 Sample"), std::string::npos);
  EXPECT_NE(svg.find("3 Decode (error)"), std::string::npos);
  // The vgpu panel shows dit's weights only where they were on it: the Sample stage.
  const auto panel_end = svg.find("</g>");
  const std::string vgpu = svg.substr(0, panel_end);
  size_t bands = 0;
  for (size_t pos = vgpu.find("data-band=\"dit\""); pos != std::string::npos;
       pos = vgpu.find("data-band=\"dit\"", pos + 1)) {
    ++bands;
  }
  EXPECT_EQ(bands, 1u);
}

TEST(MemoryLedger, WritesReportFilesWholly) {
  LedgerRun run;
  const auto dir = std::filesystem::temp_directory_path() / "wan_ledger_test";
  std::filesystem::create_directories(dir);
  run.devices.ledger().write_json(dir / "report.json");
  run.devices.ledger().write_svg(dir / "report.svg");
  std::ifstream in(dir / "report.json");
  const auto parsed = nlohmann::json::parse(in);
  EXPECT_EQ(parsed, run.devices.ledger().to_json());
  EXPECT_FALSE(std::filesystem::exists(dir / "report.json.tmp"));
  EXPECT_TRUE(std::filesystem::exists(dir / "report.svg"));
  std::filesystem::remove_all(dir);
}

TEST(MemoryLedger, UnendedStageIsClosedAsFailedByTheNext) {
  MemoryLedger ledger([] { return MemorySample{}; }, [] {});
  ledger.begin_stage("1", "A");
  EXPECT_EQ(ledger.current_label(), "A (node 1)");
  ledger.begin_stage("2", "B");
  ledger.end_stage();
  ASSERT_EQ(ledger.stages().size(), 2u);
  EXPECT_FALSE(ledger.stages()[0].outcome.ok);
  EXPECT_TRUE(ledger.stages()[1].outcome.ok);
  EXPECT_EQ(ledger.current_label(), "");
}

}  // namespace
}  // namespace wan::device
