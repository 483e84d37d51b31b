#include "plan/plan_context.h"

#include <algorithm>
#include <map>

#include "core/error.h"
#include "device/block_packing.h"
#include "device/out_of_memory_message.h"
#include "plan/memory_plan.h"

namespace wan::plan {

std::string block_of(const std::string& key) {
  for (const std::string list : {"blocks.", "vace_blocks."}) {
    if (key.rfind(list, 0) != 0) continue;
    const auto dot = key.find('.', list.size());
    return dot == std::string::npos ? "" : key.substr(0, dot);
  }
  return "";
}

namespace {

// "blocks.7" -> 7; -1 for any other block list.
int64_t main_block_index(const std::string& block) {
  const std::string list = "blocks.";
  if (block.rfind(list, 0) != 0) return -1;
  return std::stoll(block.substr(list.size()));
}

}  // namespace

bool visits_with_block(const ModelPlan& model, const std::string& key) {
  const std::string block = block_of(key);
  if (block.empty()) return false;
  const int64_t index = main_block_index(block);
  return index < 0 || index >= model.resident_blocks;
}

void keep_blocks_resident(ModelPlan& model, int64_t count) {
  std::map<std::string, int64_t> per_block;
  for (const auto& [key, bytes] : model.tensors)
    if (const auto block = block_of(key); !block.empty()) per_block[block] += bytes;
  model.block_bytes = 0;
  model.blocks = static_cast<int64_t>(per_block.size());
  model.resident_blocks = 0;  // counts the blocks there are: `count` may exceed them
  model.resident_bytes = 0;
  model.largest_streamed_bytes = 0;
  for (const auto& [block, bytes] : per_block) {
    model.block_bytes += bytes;
    const int64_t index = main_block_index(block);
    if (index >= 0 && index < count) {
      model.resident_bytes += bytes;
      ++model.resident_blocks;
    } else {
      model.largest_streamed_bytes = std::max(model.largest_streamed_bytes, bytes);
    }
  }
}

PlanContext::PlanContext(ModelFolders models_dir, std::string preset, bool accelerator,
                         std::string device_name, int64_t capacity)
    : models_dir_(std::move(models_dir)),
      preset_(std::move(preset)),
      accelerator_(accelerator),
      device_name_(std::move(device_name)),
      capacity_(capacity) {}

const PlannedValue* PlanContext::input(const std::string& name) const {
  auto it = links_.find(name);
  if (it == links_.end()) return nullptr;
  return &outputs_.at(it->second.first).at(static_cast<size_t>(it->second.second));
}

ModelPlan& PlanContext::model(const std::string& name) const {
  const PlannedValue* value = input(name);
  if (!value || !value->model)
    throw ValidationError(label_ + " input '" + name + "': no planned model on this link");
  return *value->model;
}

bool PlanContext::computes_on_device(const ModelPlan& model) const {
  return accelerator_ && model.placement != device::Placement::kCpu;
}

void PlanContext::note(int64_t device_extra, int64_t cpu_extra, const std::string& what) {
  if (dev_held_ + device_extra > dev_peak_) {
    dev_peak_ = dev_held_ + device_extra;
    peak_part_ = what;
  }
  cpu_peak_ = std::max(cpu_peak_, cpu_held_ + cpu_extra);
}

std::shared_ptr<ModelPlan> PlanContext::adopt(ModelPlan model, const std::string& base,
                                              const std::string& placement) {
  auto m = std::make_shared<ModelPlan>(std::move(model));
  m->name = base;
  for (int n = 2; model_names_.count(m->name); ++n) m->name = base + "#" + std::to_string(n);
  model_names_.insert(m->name);
  m->placement = device::parse_placement(placement);
  models_.push_back(m);
  note(0, m->load_transient_bytes < 0 ? m->bytes : m->cpu_bytes + m->load_transient_bytes, "");
  cpu_held_ += m->cpu_bytes;
  if (m->placement == device::Placement::kGpu && accelerator_) {
    move_in(*m);
    if (!oom_) cpu_held_ -= m->cpu_bytes;  // the CPU tensors are dropped once moved
  }
  return m;
}

void PlanContext::move_in(ModelPlan& m) {
  int64_t moved = 0;
  for (const auto& [key, bytes] : m.tensors) {
    if (streams(m) && visits_with_block(m, key)) continue;  // visits the device with its block
    if (capacity_ >= 0 && dev_held_ + bytes > capacity_) {
      oom_ = device::weight_move_oom_message(label_, device_name_, m.name, m.placement, key, bytes,
                                             capacity_ - dev_held_, capacity_);
      note(0, 0, "");
      dev_held_ -= moved;  // rolled back
      return;
    }
    dev_held_ += bytes;
    moved += bytes;
    note(0, 0, m.name + " weights");
  }
  m.on_device = true;
  current_->bytes_in += moved;
}

void PlanContext::page_lock_streamed_blocks(ModelPlan& m) {
  // Each streamed block's tensors are copied into one page-locked buffer, held from now on, in
  // the order the blocks compute (as the tensors list them) while the limit allows; a converted
  // original (an allocation, not a view of the mapped file) is freed once its copy replaces it.
  std::vector<std::string> order;
  std::map<std::string, std::pair<int64_t, int64_t>> blocks;  // block -> packed, freed bytes
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    if (!visits_with_block(m, m.tensors[i].first)) continue;
    const std::string block = block_of(m.tensors[i].first);
    auto [it, added] = blocks.try_emplace(block, 0, 0);
    if (added) order.push_back(block);
    it->second.first += device::packed_size(m.tensors[i].second);
    if (m.load_transient_bytes < 0 || (i < m.converted.size() && m.converted[i]))
      it->second.second += m.tensors[i].second;
  }
  m.page_locked = true;
  for (const auto& block : order) {
    const auto [locked, freed] = blocks[block];
    if (page_lock_limit_ >= 0 && page_locked_ + locked > page_lock_limit_) break;
    page_locked_ += locked;
    cpu_held_ += locked - freed;
  }
  note(0, 0, "");
}

bool PlanContext::lease(ModelPlan& m, int64_t act, const std::string& what,
                        int64_t inputs_on_device, int64_t passes, int64_t tokens) {
  if (computes_on_device(m) && !m.on_device) {
    move_in(m);
    if (oom_) return false;
  }
  const bool on_dev = computes_on_device(m);
  if (on_dev && streams(m) && !m.page_locked) page_lock_streamed_blocks(m);
  if (on_dev && streams(m)) {
    // The visited block and the one brought in ahead of it (taken as the largest).
    const int64_t streamed = m.blocks - m.resident_blocks;
    act += std::min<int64_t>(2, streamed) * m.largest_streamed_bytes;
    current_->bytes_in += passes * (m.block_bytes - m.resident_bytes);
    current_->bytes_out += passes * (m.block_bytes - m.resident_bytes);
  }
  if (on_dev) {
    const std::string part = m.name + " weights + " + what;
    if (capacity_ >= 0 && dev_held_ + inputs_on_device + act > capacity_) {
      oom_ = device::activation_oom_message(
          label_, device_name_, m.name, what, inputs_on_device + act,
          dev_held_ + inputs_on_device + act - capacity_,
          std::max<int64_t>(0, capacity_ - dev_held_), capacity_);
      note(inputs_on_device + act, 0, part);
      return false;
    }
    note(inputs_on_device + act, 0, part);
  } else {
    note(inputs_on_device, act, "");
    cpu_work_ += static_cast<double>(m.bytes) * static_cast<double>(std::max<int64_t>(1, tokens)) *
                 static_cast<double>(passes);
  }
  if ((m.placement == device::Placement::kOffload || streams(m)) && m.on_device) {
    const int64_t resident = streams(m) ? m.bytes - m.block_bytes + m.resident_bytes : m.bytes;
    dev_held_ -= resident;
    current_->bytes_out += resident;
    m.on_device = false;
  }
  return true;
}

void PlanContext::park(const ModelPlan& model, int64_t bytes_each_way, int64_t cpu_bytes) {
  if (!computes_on_device(model) || bytes_each_way == 0) return;
  current_->bytes_in += bytes_each_way;
  current_->bytes_out += bytes_each_way;
  note(0, cpu_bytes, "");
}

void PlanContext::hold(const PlannedValue& value, int64_t transient_cpu) {
  note(0, transient_cpu, "");
  dev_held_ += value.device_bytes;
  cpu_held_ += value.cpu_bytes;
  note(0, 0, "");
}

void PlanContext::set_output(size_t index, PlannedValue value) {
  if (index >= node_outputs_.size())
    throw std::logic_error(label_ + ": plan sets output " + std::to_string(index) + " of " +
                           std::to_string(node_outputs_.size()));
  node_outputs_[index] = std::move(value);
}

void PlanContext::begin_node(PlannedNode& node, const std::string& label,
                             const std::map<std::string, std::pair<std::string, int64_t>>& links,
                             size_t outputs) {
  current_ = &node;
  label_ = label;
  links_ = links;
  node_outputs_.assign(outputs, PlannedValue{});
  dev_peak_ = dev_held_;
  cpu_peak_ = cpu_held_;
  peak_part_.clear();
}

void PlanContext::end_node(const std::string& id) {
  outputs_[id] = std::move(node_outputs_);
  node_outputs_.clear();
  current_ = nullptr;
}

}  // namespace wan::plan
