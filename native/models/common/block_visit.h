// Streaming a model's blocks through the compute device one at a time (placement `stream`): a
// model wraps each block's forward in visit_block, and the device layer, while a stream lease is
// open on the calling thread, moves that block's weights in for the visit (and the next block's
// ahead of it) and out after it. With no visitor installed (every other placement) a visit does
// nothing.
#pragma once
#include <torch/nn/module.h>

#include <memory>

namespace wan::models {

// What a stream lease installs. visit() readies `block` to compute until the returned handle is
// dropped; `next` (null after the last block) is the block the model computes after it.
class BlockVisitor {
 public:
  virtual ~BlockVisitor() = default;
  virtual std::shared_ptr<void> visit(torch::nn::Module& block, torch::nn::Module* next) = 0;
};

// Installs `visitor` for the calling thread while alive (scopes nest; the innermost wins).
class BlockVisitorScope {
 public:
  explicit BlockVisitorScope(BlockVisitor* visitor);
  ~BlockVisitorScope();
  BlockVisitorScope(const BlockVisitorScope&) = delete;
  BlockVisitorScope& operator=(const BlockVisitorScope&) = delete;

 private:
  BlockVisitor* previous_;
};

// The calling thread's visitor's visit, or an empty handle when none is installed.
std::shared_ptr<void> visit_block(torch::nn::Module& block, torch::nn::Module* next);

}  // namespace wan::models
