#include "models/common/block_visit.h"

namespace wan::models {
namespace {

thread_local BlockVisitor* current_visitor = nullptr;

}  // namespace

BlockVisitorScope::BlockVisitorScope(BlockVisitor* visitor) : previous_(current_visitor) {
  current_visitor = visitor;
}

BlockVisitorScope::~BlockVisitorScope() { current_visitor = previous_; }

std::shared_ptr<void> visit_block(torch::nn::Module& block, torch::nn::Module* next) {
  return current_visitor ? current_visitor->visit(block, next) : nullptr;
}

}  // namespace wan::models
