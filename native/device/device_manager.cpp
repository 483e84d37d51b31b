#include "device/device_manager.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>
#include <torch/nn/modules/container/modulelist.h>

#include <algorithm>
#include <chrono>
#include <unordered_set>

#include "core/error.h"
#include "device/block_packing.h"
#include "device/cuda_backend.h"
#include "device/out_of_memory_message.h"
#include "models/common/activation_parking.h"
#include "models/common/block_visit.h"

namespace wan::device {

struct ModelRecord {
  std::string name;
  Placement placement = Placement::kCpu;
  std::shared_ptr<torch::nn::Module> module;
  int64_t bytes = 0;
  // `stream`: how many of the first block list's blocks move in with the lease and stay for it.
  int64_t resident_blocks = 0;
  bool on_compute = false;
  // `stream` on CUDA: the streamed blocks' CPU tensors were replaced by page-locked copies
  // (or that failed and was said once), so their copies can overlap compute.
  bool stream_pinned = false;
  int leases = 0;
  // While an offloaded model's weights are in: each parameter/buffer and its CPU tensor, which
  // it points back at when moving out.
  std::vector<std::pair<at::Tensor, at::Tensor>> cpu_copies;
  std::string compute_name;
};

struct WeightSlot {
  std::string key;
  at::Tensor handle;  // shares its TensorImpl with the module's parameter or buffer
};

namespace {

int64_t tensor_bytes(const at::Tensor& tensor) {
  return static_cast<int64_t>(tensor.numel()) * static_cast<int64_t>(tensor.element_size());
}

// Every parameter and buffer once, under its checkpoint key; tied tensors count once.
std::vector<WeightSlot> weight_slots(torch::nn::Module& module) {
  std::vector<WeightSlot> slots;
  std::unordered_set<const c10::TensorImpl*> seen;
  auto add = [&](const std::string& key, const at::Tensor& tensor) {
    if (tensor.defined() && seen.insert(tensor.unsafeGetTensorImpl()).second) {
      slots.push_back({key, tensor});
    }
  };
  for (const auto& item : module.named_parameters(/*recurse=*/true)) add(item.key(), item.value());
  for (const auto& item : module.named_buffers(/*recurse=*/true)) add(item.key(), item.value());
  return slots;
}

// The blocks `stream` leaves in CPU memory until each is visited: every element of a ModuleList
// that is a direct child of the model ("blocks", "vace_blocks"), except the first `resident` of
// the first such list, which move in with the lease.
std::vector<torch::nn::Module*> streamed_blocks(torch::nn::Module& model, int64_t resident) {
  std::vector<torch::nn::Module*> blocks;
  bool first_list = true;
  for (const auto& child : model.children()) {
    if (!dynamic_cast<torch::nn::ModuleListImpl*>(child.get())) continue;
    int64_t index = 0;
    for (const auto& block : child->children())
      if (!first_list || index++ >= resident) blocks.push_back(block.get());
    first_list = false;
  }
  return blocks;
}

std::unordered_set<const c10::TensorImpl*> streamed_tensors(torch::nn::Module& model,
                                                            int64_t resident) {
  std::unordered_set<const c10::TensorImpl*> streamed;
  for (auto* block : streamed_blocks(model, resident))
    for (const auto& slot : weight_slots(*block)) streamed.insert(slot.handle.unsafeGetTensorImpl());
  return streamed;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

// ---- ModelHandle -----------------------------------------------------------------------------

const std::string& ModelHandle::name() const {
  TORCH_CHECK(record_, "empty ModelHandle");
  return record_->name;
}
Placement ModelHandle::placement() const {
  TORCH_CHECK(record_, "empty ModelHandle");
  return record_->placement;
}
std::shared_ptr<torch::nn::Module> ModelHandle::module() const {
  TORCH_CHECK(record_, "empty ModelHandle");
  return record_->module;
}
int64_t ModelHandle::bytes() const {
  TORCH_CHECK(record_, "empty ModelHandle");
  return record_->bytes;
}
bool ModelHandle::on_compute_device() const { return record_ && record_->on_compute; }

// ---- stream placement ------------------------------------------------------------------------

// One block's weights on the compute device while this lives; pointed back at their CPU tensors
// (freeing the device copies) when it ends. `ahead` on CUDA: the copies are issued on the
// device's copy stream, so they run while the current stream computes the block before;
// ready() makes the current stream wait for them before this block computes.
class StreamedBlock {
 public:
  StreamedBlock(DeviceManager& manager, std::shared_ptr<ModelRecord> record,
                torch::nn::Module& block, const std::string& block_name, std::string node_label,
                bool ahead)
      : manager_(manager), record_(std::move(record)) {
    at::NoGradGuard no_grad;
    const auto start = std::chrono::steady_clock::now();
    slots_ = weight_slots(block);
    for (auto& slot : slots_) slot.key = block_name + "." + slot.key;
    std::lock_guard<std::mutex> lock(manager_.mutex_);
    const c10::Device device = manager_.compute_->device();
    if (ahead && device.is_cuda()) {
      cuda_index_ = device.index();
      cuda_backend::CopyStreamScope on_copy_stream(cuda_index_);
      originals_ = manager_.copy_in(*record_, slots_, node_label, /*non_blocking=*/true);
      copies_done_ = cuda_backend::record_copies(cuda_index_);
    } else {
      originals_ = manager_.copy_in(*record_, slots_, node_label);
    }
    for (const auto& original : originals_) bytes_ += tensor_bytes(original);
    manager_.ledger_.add_transfer(bytes_, 0, seconds_since(start));
  }
  // Before the block computes: the current stream waits for copies made on the copy stream.
  void ready() {
    if (!copies_done_) return;
    std::vector<at::Tensor> copies;
    for (const auto& slot : slots_) copies.push_back(slot.handle.variable_data());
    cuda_backend::wait_for_copies(copies_done_, cuda_index_, copies);
    copies_done_.reset();
  }
  ~StreamedBlock() {
    const auto start = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(manager_.mutex_);
    for (size_t i = 0; i < originals_.size(); ++i) slots_[i].handle.set_data(originals_[i]);
    manager_.ledger_.add_transfer(0, bytes_, seconds_since(start));
  }
  StreamedBlock(const StreamedBlock&) = delete;
  StreamedBlock& operator=(const StreamedBlock&) = delete;

 private:
  DeviceManager& manager_;
  std::shared_ptr<ModelRecord> record_;
  std::vector<WeightSlot> slots_;
  std::vector<at::Tensor> originals_;
  int64_t bytes_ = 0;
  std::shared_ptr<void> copies_done_;  // CUDA event after the copy stream's copies; null when synchronous
  int cuda_index_ = -1;
};

// ---- activation parking ----------------------------------------------------------------------

// Installed by every lease on an accelerator: a model's parked activations go to CPU memory and
// back as the lease's own to_cpu / to_compute, counted as moves like weights.
class LeaseParking : public models::ActivationParking {
 public:
  explicit LeaseParking(DeviceManager& manager) : manager_(manager), scope_(this) {}
  at::Tensor park(const at::Tensor& tensor) override { return move(tensor, /*in=*/false); }
  at::Tensor unpark(const at::Tensor& tensor) override { return move(tensor, /*in=*/true); }

 private:
  at::Tensor move(const at::Tensor& tensor, bool in) {
    const auto start = std::chrono::steady_clock::now();
    at::Tensor out = in ? manager_.to_compute(tensor) : manager_.to_cpu(tensor);
    if (!out.is_same(tensor)) {
      const int64_t bytes = tensor_bytes(tensor);
      std::lock_guard<std::mutex> lock(manager_.mutex_);
      manager_.ledger_.add_transfer(in ? bytes : 0, in ? 0 : bytes, seconds_since(start));
    }
    return out;
  }

  DeviceManager& manager_;
  models::ActivationParkingScope scope_;
};

namespace {

// Installed by a `stream` lease: brings the visited block in (unless it was brought in ahead),
// then the next one, so that at most two blocks are on the device beside the resident ones
// (which the lease moved in and a visit leaves as they are). The copies are made in the order
// the model computes, from the calling thread. On CUDA the next block's copies go on a side
// stream from page-locked memory and overlap the visited block's compute, which the device
// queues after them; elsewhere they are synchronous, in the same order.
class StreamVisitor : public models::BlockVisitor {
 public:
  StreamVisitor(DeviceManager& manager, std::shared_ptr<ModelRecord> record, std::string node_label)
      : manager_(manager), record_(std::move(record)), node_label_(std::move(node_label)) {
    for (const auto& item : record_->module->named_modules("", /*include_self=*/false))
      names_[item.value().get()] = item.key();
    for (auto* block : streamed_blocks(*record_->module, record_->resident_blocks))
      streamed_.insert(block);
  }
  std::shared_ptr<void> visit(torch::nn::Module& block, torch::nn::Module* next) override {
    if (next && !streamed_.count(next)) next = nullptr;  // resident: already in
    std::shared_ptr<StreamedBlock> current;               // stays empty for a resident block
    if (streamed_.count(&block))
      current = ahead_ && ahead_block_ == &block ? std::move(ahead_) : bring_in(block, false);
    ahead_.reset();  // a block brought in ahead for nothing goes back out
    ahead_block_ = nullptr;
    if (next) {
      ahead_ = bring_in(*next, true);
      ahead_block_ = next;
    }
    if (current) current->ready();
    return current;
  }

 private:
  std::shared_ptr<StreamedBlock> bring_in(torch::nn::Module& block, bool ahead) {
    auto name = names_.find(&block);
    return std::make_shared<StreamedBlock>(manager_, record_, block,
                                           name == names_.end() ? "block" : name->second,
                                           node_label_, ahead);
  }

  DeviceManager& manager_;
  std::shared_ptr<ModelRecord> record_;
  std::string node_label_;
  std::map<const torch::nn::Module*, std::string> names_;
  std::unordered_set<const torch::nn::Module*> streamed_;
  std::shared_ptr<StreamedBlock> ahead_;
  const torch::nn::Module* ahead_block_ = nullptr;
};

// The visitor and the scope that installs it, owned by the lease.
struct StreamState {
  StreamVisitor visitor;
  models::BlockVisitorScope scope;
  StreamState(DeviceManager& manager, std::shared_ptr<ModelRecord> record, std::string label)
      : visitor(manager, std::move(record), std::move(label)), scope(&visitor) {}
};

}  // namespace

// ---- ComputeLease ----------------------------------------------------------------------------

ComputeLease::ComputeLease(ComputeLease&& other) noexcept { *this = std::move(other); }

ComputeLease& ComputeLease::operator=(ComputeLease&& other) noexcept {
  if (this != &other) {
    release();
    manager_ = other.manager_;
    record_ = std::move(other.record_);
    scope_ = std::move(other.scope_);
    stream_ = std::move(other.stream_);
    parking_ = std::move(other.parking_);
    device_ = other.device_;
    on_virtual_ = other.on_virtual_;
    on_compute_ = other.on_compute_;
    other.manager_ = nullptr;
  }
  return *this;
}

ComputeLease::~ComputeLease() { release(); }

void ComputeLease::release() {
  if (manager_ == nullptr) return;
  try {
    stream_.reset();  // the blocks still in go out first
    parking_.reset();
    manager_->end_lease(*record_);
  } catch (const std::exception& e) {
    spdlog::error("moving {} back to CPU memory failed: {}", record_->name, e.what());
  }
  scope_.reset();
  record_.reset();
  manager_ = nullptr;
}

at::Tensor ComputeLease::to_compute(const at::Tensor& tensor) const {
  TORCH_CHECK(manager_, "to_compute on an ended lease");
  return on_compute_ ? manager_->to_compute(tensor) : manager_->to_cpu(tensor);
}

at::Tensor ComputeLease::to_cpu(const at::Tensor& tensor) const {
  TORCH_CHECK(manager_, "to_cpu on an ended lease");
  return manager_->to_cpu(tensor);
}

// ---- DeviceManager ---------------------------------------------------------------------------

DeviceManager::DeviceManager(const ComputeDeviceOptions& options)
    : compute_(std::make_unique<ComputeDevice>(options)),
      page_lock_limit_(options.page_lock.value_or(default_page_lock())),
      ledger_(
          [this] {
            return MemorySample{memory(), models()};
          },
          [this] { reset_peaks(); }) {}

DeviceManager::~DeviceManager() = default;

ModelHandle DeviceManager::adopt(std::shared_ptr<torch::nn::Module> model, Placement placement,
                                 std::string name, int64_t resident_blocks) {
  if (!model) throw Error("adopt: model '" + name + "' is null");
  if (resident_blocks < 0)
    throw Error("adopt: model '" + name + "': resident_blocks " + std::to_string(resident_blocks) +
                " is negative");
  auto record = std::make_shared<ModelRecord>();
  record->placement = placement;
  record->resident_blocks = resident_blocks;
  record->module = std::move(model);
  for (const auto& slot : weight_slots(*record->module)) record->bytes += tensor_bytes(slot.handle);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // Reports key models by name, so a second "vae" becomes "vae#2".
    std::string unique = name;
    for (int n = 2;; ++n) {
      bool taken = false;
      for (const auto& weak : records_) {
        auto other = weak.lock();
        if (other && other->name == unique) taken = true;
      }
      if (!taken) break;
      unique = name + "#" + std::to_string(n);
    }
    record->name = unique;
    records_.erase(std::remove_if(records_.begin(), records_.end(),
                                  [](const auto& weak) { return weak.expired(); }),
                   records_.end());
    if (placement == Placement::kGpu && compute_->is_accelerator()) {
      const std::string label = ledger_.current_label();
      move_in(*record, label.empty() ? "adopt" : label, /*keep_cpu_copies=*/false);
    }
    records_.push_back(record);
  }
  if (placement != Placement::kCpu && !compute_->is_accelerator()) {
    // Asked for the device and there is none: say so, not silently compute on the CPU.
    spdlog::warn("{}: placement={} computes on the CPU: there is no accelerator and no --vram "
                 "budget",
                 record->name, placement_name(placement));
  } else {
    spdlog::debug("{}: {} weights, placement={} -> {}", record->name, format_bytes(record->bytes),
                  placement_name(placement), record->on_compute ? compute_->name() : "cpu");
  }
  return ModelHandle(record);
}

ComputeLease DeviceManager::lease(const ModelHandle& model, const std::string& node_label) {
  if (!model) throw Error(node_label + ": lease of an empty model handle");
  ModelRecord& record = *model.record_;
  const bool on_compute = record.placement != Placement::kCpu && compute_->is_accelerator();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (on_compute && !record.on_compute) {
      move_in(record, node_label, /*keep_cpu_copies=*/record.placement != Placement::kGpu);
    }
    ++record.leases;
    ledger_.note_computed_on(record.name, on_compute ? compute_->name() : "cpu");
  }
  ComputeLease lease;
  lease.manager_ = this;
  lease.record_ = model.record_;
  lease.on_compute_ = on_compute;
  lease.on_virtual_ = on_compute && compute_->kind() == ComputeKind::kVirtual;
  lease.device_ = on_compute ? compute_->device() : c10::Device(c10::kCPU);
  // A model computing on the CPU inside another model's lease still counts as CPU memory.
  lease.scope_ = std::make_unique<MemoryPoolScope>(lease.on_virtual_ ? MemoryPool::kVirtual
                                                                     : MemoryPool::kHost);
  if (on_compute) lease.parking_ = std::make_shared<LeaseParking>(*this);
  if (on_compute && record.placement == Placement::kStream) {
    if (compute_->kind() == ComputeKind::kCuda) pin_streamed_blocks(record);
    lease.stream_ = std::make_shared<StreamState>(*this, model.record_, node_label);
  }
  return lease;
}

void DeviceManager::pin_streamed_blocks(ModelRecord& record) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (record.stream_pinned) return;
  record.stream_pinned = true;
  at::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  int64_t pinned = 0, total = 0;
  bool limited = false;
  std::string failure;
  // One buffer per block (block_packing.h: a page-locked copy per tensor would lock about 1.53
  // times the bytes). Past the limit, or after a failure, the later blocks stay pageable.
  for (auto* block : streamed_blocks(*record.module, record.resident_blocks)) {
    std::vector<WeightSlot> slots;
    std::vector<at::Tensor> data;
    for (auto& slot : weight_slots(*block)) {
      at::Tensor tensor = slot.handle.variable_data();
      total += tensor_bytes(tensor);
      if (!tensor.device().is_cpu()) continue;
      slots.push_back(slot);
      data.push_back(std::move(tensor));
    }
    const int64_t bytes = packed_bytes(data);
    if (page_locked_ + bytes > page_lock_limit_) limited = true;
    if (limited || !failure.empty() || data.empty()) continue;
    try {
      const auto locked = pack_tensors(data, cuda_backend::page_locked_buffer);
      for (size_t i = 0; i < slots.size(); ++i) slots[i].handle.set_data(locked[i]);
      pinned += bytes;
      page_locked_ += bytes;
    } catch (const std::exception& e) {
      failure = e.what();
    }
  }
  if (!failure.empty()) {
    spdlog::warn("{}: page-locked {} of {} of streamed blocks, then: {}; the other blocks' copies "
                 "to {} do not overlap compute",
                 record.name, format_bytes(pinned), format_bytes(total),
                 failure.substr(0, failure.find('\n')), compute_->name());
  } else if (limited) {
    spdlog::info("{}: page-locked {} of {} of streamed blocks in CPU memory in {:.2f} s "
                 "(--page-lock {}, {} locked in all); the other blocks' copies to {} are pageable",
                 record.name, format_bytes(pinned), format_bytes(total), seconds_since(start),
                 format_bytes(page_lock_limit_), format_bytes(page_locked_), compute_->name());
  } else {
    spdlog::info("{}: page-locked {} of streamed blocks in CPU memory in {:.2f} s, so their "
                 "copies to {} overlap compute",
                 record.name, format_bytes(pinned), seconds_since(start), compute_->name());
  }
}

void DeviceManager::end_lease(ModelRecord& record) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (--record.leases == 0 && record.placement != Placement::kGpu && record.on_compute) {
    move_out(record);
  }
}

void DeviceManager::move_in(ModelRecord& record, const std::string& node_label,
                            bool keep_cpu_copies) {
  at::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  auto slots = weight_slots(*record.module);
  if (record.placement == Placement::kStream) {
    // The blocks stay in CPU memory; each visits the device as the model computes it.
    const auto streamed = streamed_tensors(*record.module, record.resident_blocks);
    slots.erase(std::remove_if(slots.begin(), slots.end(),
                               [&](const WeightSlot& slot) {
                                 return streamed.count(slot.handle.unsafeGetTensorImpl()) > 0;
                               }),
                slots.end());
  }
  const auto originals = copy_in(record, slots, node_label);
  int64_t moved = 0;
  for (const auto& original : originals) moved += tensor_bytes(original);
  if (keep_cpu_copies) {
    record.cpu_copies.clear();
    record.cpu_copies.reserve(slots.size());
    for (size_t i = 0; i < slots.size(); ++i) {
      record.cpu_copies.emplace_back(slots[i].handle, originals[i]);
    }
  }
  record.on_compute = true;
  record.compute_name = compute_->name();
  const double seconds = seconds_since(start);
  ledger_.add_transfer(moved, 0, seconds);
  spdlog::debug("{}: moved {} ({}) to {} in {:.3f} s", node_label, record.name, format_bytes(moved),
                compute_->name(), seconds);
}

std::vector<at::Tensor> DeviceManager::copy_in(ModelRecord& record, std::vector<WeightSlot>& slots,
                                               const std::string& node_label, bool non_blocking) {
  at::NoGradGuard no_grad;
  const bool is_virtual = compute_->kind() == ComputeKind::kVirtual;
  std::vector<at::Tensor> originals;
  originals.reserve(slots.size());

  // Points every moved tensor back at its CPU original; the copies free as they drop.
  auto roll_back = [&] {
    for (size_t j = 0; j < originals.size(); ++j) slots[j].handle.set_data(originals[j]);
  };
  auto fail = [&](const std::string& key, const std::string& device, int64_t requested,
                  int64_t free, int64_t capacity) -> OutOfMemory {
    return OutOfMemory(weight_move_oom_message(node_label, device, record.name, record.placement,
                                               key, requested, free, capacity),
                       device, key, requested, free, capacity);
  };

  // On the virtual accelerator ATen's device stays CPU, so "moving" is a copy made inside
  // the virtual pool's scope; that copy is the counted memory.
  auto scope = compute_->open_scope();
  for (auto& slot : slots) {
    at::Tensor original = slot.handle.variable_data();
    const int64_t bytes = tensor_bytes(original);
    try {
      at::Tensor copy;
      if (is_virtual) {
        copy = original.clone();
      } else {
        compute_->check_fits(bytes, slot.key);
        copy = original.to(compute_->device(), non_blocking);
      }
      slot.handle.set_data(copy);
    } catch (const OutOfMemory& e) {
      roll_back();
      throw fail(slot.key, e.device(), e.bytes_requested(), e.bytes_free(), e.bytes_capacity());
    } catch (const std::exception& e) {
      roll_back();
      if (cuda_backend::is_out_of_memory(e)) {
        throw fail(slot.key, compute_->name(), bytes, compute_->bytes_free(),
                   compute_->bytes_capacity());
      }
      throw;
    }
    originals.push_back(std::move(original));
  }
  return originals;
}

void DeviceManager::move_out(ModelRecord& record) {
  const auto start = std::chrono::steady_clock::now();
  int64_t released = 0;
  for (auto& [handle, cpu] : record.cpu_copies) {
    released += tensor_bytes(cpu);
    handle.set_data(cpu);  // the device copy drops here and its memory frees
  }
  record.cpu_copies.clear();
  record.on_compute = false;
  ledger_.add_transfer(0, released, seconds_since(start));
}

int64_t DeviceManager::unload_idle_models() {
  at::NoGradGuard no_grad;
  std::lock_guard<std::mutex> lock(mutex_);
  int64_t released = 0;
  for (const auto& weak : records_) {
    auto record = weak.lock();
    if (!record || !record->on_compute || record->leases > 0) continue;
    const auto start = std::chrono::steady_clock::now();
    int64_t bytes = 0;
    if (!record->cpu_copies.empty()) {
      for (const auto& [handle, cpu] : record->cpu_copies) bytes += tensor_bytes(cpu);
      move_out(*record);
    } else {
      // A `gpu` model keeps no CPU copies: copy every tensor out first, then swap them all, so
      // a CPU allocation failure leaves the model wholly on the device.
      auto slots = weight_slots(*record->module);
      std::vector<at::Tensor> copies;
      copies.reserve(slots.size());
      {
        MemoryPoolScope host(MemoryPool::kHost);
        for (const auto& slot : slots) {
          const at::Tensor data = slot.handle.variable_data();
          copies.push_back(data.device().is_cpu() ? data.clone() : data.to(c10::kCPU));
        }
      }
      for (size_t i = 0; i < slots.size(); ++i) {
        bytes += tensor_bytes(copies[i]);
        slots[i].handle.set_data(copies[i]);
      }
      record->on_compute = false;
      ledger_.add_transfer(0, bytes, seconds_since(start));
    }
    spdlog::info("{}: unloaded {} from {} (the next node that uses it moves it back)", record->name,
                 format_bytes(bytes), record->compute_name);
    released += bytes;
  }
  return released;
}

at::Tensor DeviceManager::to_compute(const at::Tensor& tensor) const {
  if (!compute_->is_accelerator() || !tensor.defined()) return tensor;
  if (compute_->kind() == ComputeKind::kVirtual) {
    if (TrackingAllocator::pool_of(tensor) == MemoryPool::kVirtual) return tensor;
    MemoryPoolScope scope(MemoryPool::kVirtual);
    return tensor.clone();
  }
  return tensor.to(compute_->device());
}

at::Tensor DeviceManager::to_cpu(const at::Tensor& tensor) const {
  if (!tensor.defined()) return tensor;
  MemoryPoolScope scope(MemoryPool::kHost);
  if (!tensor.device().is_cpu()) return tensor.to(c10::kCPU);
  if (TrackingAllocator::pool_of(tensor) == MemoryPool::kVirtual) return tensor.clone();
  return tensor;
}

std::vector<ModelMemory> DeviceManager::models() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<ModelMemory> out;
  for (const auto& weak : records_) {
    auto record = weak.lock();
    if (!record) continue;
    out.push_back({record->name, placement_name(record->placement),
                   record->on_compute ? record->compute_name : "cpu", "", record->bytes});
  }
  return out;
}

std::vector<DeviceMemory> DeviceManager::memory() const {
  std::vector<DeviceMemory> out;
  const MemoryPoolStats host = ComputeDevice::host_stats();
  if (compute_->is_accelerator()) {
    out.push_back({compute_->name(), compute_->bytes_in_use(), compute_->bytes_peak(),
                   compute_->bytes_capacity()});
  }
  out.push_back({"cpu", host.bytes_current, host.bytes_peak, -1});
  return out;
}

void DeviceManager::reset_peaks() {
  if (compute_->is_accelerator()) compute_->reset_peak();
  ComputeDevice::reset_host_peak();
}

}  // namespace wan::device
