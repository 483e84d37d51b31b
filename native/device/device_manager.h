// The one component that owns where each model's weights live and moves them.
//
//   auto vae = run.devices().adopt(load_wan_vae(path), Placement::kGpu, "vae");
//   {
//     auto lease = run.devices().lease(vae, run.node_label());  // weights in, scope open
//     auto out = vae.module_as<WanVaeImpl>()->decode(lease.to_compute(latent));
//     video = lease.to_cpu(out);
//   }  // offloaded weights go back out here, freeing the compute device
//
// Placement semantics (NODES.md): `gpu` moves the weights to the compute device at adopt() and
// keeps them there; `cpu` keeps them in CPU memory and computes there; `offload` keeps them in
// CPU memory and moves them in for each lease; `stream` moves in for each lease all but the
// blocks (the elements of the model's top-level ModuleLists), which visit the device one at a
// time as the model computes them, the next one brought in ahead (the first N of them can stay
// in for the lease: adopt's resident_blocks). An offloaded model keeps its
// CPU tensors while its weights are in, so moving out only points the parameters back at them:
// free, exact, and the same trade ComfyUI and diffusers make (CPU memory for the whole model
// stays held).
#pragma once
#include <c10/core/Device.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "device/compute_device.h"
#include "device/memory_ledger.h"
#include "device/placement.h"

namespace wan::device {

class DeviceManager;
struct ModelRecord;  // defined in device_manager.cpp
struct WeightSlot;   // likewise

// A model registered with the manager. Copies share the model; the last copy frees it.
class ModelHandle {
 public:
  ModelHandle() = default;
  explicit operator bool() const { return record_ != nullptr; }
  const std::string& name() const;
  Placement placement() const;
  std::shared_ptr<torch::nn::Module> module() const;
  template <class T>
  std::shared_ptr<T> module_as() const {
    return std::dynamic_pointer_cast<T>(module());
  }
  int64_t bytes() const;  // parameters + buffers
  // Whether the weights are on the compute device now (always for `gpu` on an accelerator).
  bool on_compute_device() const;

 private:
  friend class DeviceManager;
  friend class ComputeLease;
  explicit ModelHandle(std::shared_ptr<ModelRecord> record) : record_(std::move(record)) {}
  std::shared_ptr<ModelRecord> record_;
};

// "Ready to compute" for one model. While alive: the weights are where the model computes, and
// the calling thread's allocations are counted on that device. Ending it moves offloaded
// weights back out. Must end on the thread that took it, and before the manager is destroyed.
class ComputeLease {
 public:
  ComputeLease() = default;
  ComputeLease(ComputeLease&& other) noexcept;
  ComputeLease& operator=(ComputeLease&& other) noexcept;
  ComputeLease(const ComputeLease&) = delete;
  ComputeLease& operator=(const ComputeLease&) = delete;
  ~ComputeLease();

  // Where to compute: cuda:N, or cpu (the CPU, or the virtual accelerator backed by it).
  c10::Device device() const { return device_; }
  // Whether this model's activations are counted on the virtual accelerator.
  bool on_virtual_accelerator() const { return on_virtual_; }
  bool on_compute_device() const { return on_compute_; }
  // An input moved to where the model computes (a counted copy on the virtual accelerator);
  // returned as is when already there.
  at::Tensor to_compute(const at::Tensor& tensor) const;
  // An output moved back to CPU memory (copied out of the virtual accelerator's count).
  at::Tensor to_cpu(const at::Tensor& tensor) const;
  // Ends the lease now; idempotent.
  void release();

 private:
  friend class DeviceManager;
  DeviceManager* manager_ = nullptr;
  std::shared_ptr<ModelRecord> record_;
  std::unique_ptr<MemoryPoolScope> scope_;
  // `stream`: the block visitor this lease installs on its thread (models/common/block_visit.h).
  std::shared_ptr<void> stream_;
  // On an accelerator: the activation parking this lease installs on its thread
  // (models/common/activation_parking.h).
  std::shared_ptr<void> parking_;
  c10::Device device_{c10::kCPU};
  bool on_virtual_ = false, on_compute_ = false;
};

class DeviceManager {
 public:
  explicit DeviceManager(const ComputeDeviceOptions& options = {});
  ~DeviceManager();
  DeviceManager(const DeviceManager&) = delete;
  DeviceManager& operator=(const DeviceManager&) = delete;

  const ComputeDevice& compute() const { return *compute_; }
  MemoryLedger& ledger() { return ledger_; }
  const MemoryLedger& ledger() const { return ledger_; }

  // Registers a loaded model (weights in CPU memory). `gpu` moves it to the compute device now;
  // on failure (wan::OutOfMemory naming the node of the open stage, the model and the tensor)
  // the model is left wholly in CPU memory. `name` names it in reports ("dit", "vae").
  // `resident_blocks` (stream only): the first that many blocks of the model's first block list
  // move in with each lease like the rest of the model instead of visiting one at a time.
  ModelHandle adopt(std::shared_ptr<torch::nn::Module> model, Placement placement,
                    std::string name, int64_t resident_blocks = 0);
  // Readies `model` to compute for `node_label` ("Sample (node 12)"). For `offload` moves every
  // parameter and buffer in, rolling back on failure with an OutOfMemory that names the node,
  // the model and the tensor. Leases of one model nest; the last one to end moves it out.
  ComputeLease lease(const ModelHandle& model, const std::string& node_label);

  // A tensor on the compute device (a counted copy on the virtual accelerator).
  at::Tensor to_compute(const at::Tensor& tensor) const;
  // A tensor in CPU memory (out of the compute device's count).
  at::Tensor to_cpu(const at::Tensor& tensor) const;

  // Moves every model that is on the compute device and not computing (no lease) back to CPU
  // memory, as a host's "unload models" asks; its next lease moves it in again. Returns the
  // device bytes released. A failed copy to the CPU leaves every model where it was.
  int64_t unload_idle_models();

  // Live models, for reports.
  std::vector<ModelMemory> models() const;
  // Bytes per device now; the compute device first, then "cpu" when they differ.
  std::vector<DeviceMemory> memory() const;
  void reset_peaks();

 private:
  friend class ComputeLease;
  friend class StreamedBlock;
  friend class LeaseParking;
  void move_in(ModelRecord& record, const std::string& node_label, bool keep_cpu_copies);
  // Copies each slot's tensor to the compute device and points the slot at the copy; returns
  // the originals in slot order. On failure every slot is pointed back and an OutOfMemory naming
  // the node, the model and the tensor is thrown.
  // `non_blocking`: CUDA copies from page-locked memory return before they finish (the caller
  // orders them with an event).
  std::vector<at::Tensor> copy_in(ModelRecord& record, std::vector<WeightSlot>& slots,
                                  const std::string& node_label, bool non_blocking = false);
  // `stream` on CUDA, once per model: the streamed blocks' CPU tensors become page-locked
  // copies (what a copy that overlaps compute reads), block by block while page_lock_limit_
  // allows; a failure is logged, not thrown.
  void pin_streamed_blocks(ModelRecord& record);
  void move_out(ModelRecord& record);
  void end_lease(ModelRecord& record);

  std::unique_ptr<ComputeDevice> compute_;
  int64_t page_lock_limit_ = 0;  // ComputeDeviceOptions::page_lock, or its default
  int64_t page_locked_ = 0;                 // by pin_streamed_blocks, over the models
  MemoryLedger ledger_;
  mutable std::mutex mutex_;
  std::vector<std::weak_ptr<ModelRecord>> records_;
};

}  // namespace wan::device
