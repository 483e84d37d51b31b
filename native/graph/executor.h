// Runs a validated API prompt: only the ancestors of output nodes, each once, in dependency
// order, with ComfyUI's output cache.
//
// Cache: a node's signature is its class_type, its literal inputs and, for each link, the
// signature of the linked node and the output index (ComfyUI's caching.py). Outputs stay cached
// under their signature between runs of one Executor, so re-running with a new seed on Sample
// re-runs only Sample and what depends on it; loaders keep their models alive. At the start of a
// run, entries the new prompt no longer uses are dropped (the old model goes before the new one
// loads).
#pragma once
#include <exception>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "graph/node_registry.h"
#include "graph/validator.h"

namespace wan::graph {

struct NodeRun {
  enum class Outcome { kOk, kCached, kError, kCancelled };
  std::string node_id, class_type, title;
  Outcome outcome = Outcome::kOk;
  std::string error;  // kError: the exception's message
  double wall_ms = 0;
};

struct RunReport {
  std::vector<NodeRun> nodes;  // in execution order; a failed run ends with the failing node
  double wall_ms = 0;
  int executed() const;  // nodes that ran (kOk)
  int cached() const;    // nodes served from the cache
  // {"nodes": [{"id", "class_type", "title", "outcome": "ok"|"cached"|"error"|"cancelled",
  //             "wall_ms", "error"?}], "wall_ms", "executed", "cached"}
  nlohmann::json to_json() const;
};

const char* outcome_name(NodeRun::Outcome outcome);

// A node's execute() threw. The message starts with "Sample (node 12): "; cause() is the original
// exception (OutOfMemory, LoadError, ...) for callers that map types to exit codes.
class NodeError : public Error {
 public:
  NodeError(std::string node_id, std::string class_type, std::exception_ptr cause,
            const std::string& message)
      : Error(message),
        node_id_(std::move(node_id)),
        class_type_(std::move(class_type)),
        cause_(std::move(cause)) {}
  const std::string& node_id() const { return node_id_; }
  const std::string& class_type() const { return class_type_; }
  const std::exception_ptr& cause() const { return cause_; }

 private:
  std::string node_id_, class_type_;
  std::exception_ptr cause_;
};

// Runs node `node_id` of `class_type` on `in` (links already resolved), as the executor and the
// ComfyUI binding both do: the schema's defaults fill absent widget inputs (an absent required
// input is an error), the node's memory-ledger stage and its kNodeStarted event open, the run's
// cancellation is checked, execute() runs, and its output count is checked against the schema.
// The context names the node meanwhile. Throws NodeError (the message starts with the node's
// label; cause() is the original exception), or wan::Cancelled.
// (Declared in graph/node_registry.h, a friend of RunContext.)

class Executor {
 public:
  explicit Executor(const NodeRegistry& registry) : registry_(registry) {}

  // Validates the prompt (throws InvalidPrompt with ComfyUI's error JSON), then runs it.
  // Throws wan::Cancelled when `run.cancel_flag` is raised (checked between nodes and by nodes
  // between steps); the outputs computed in this run are then freed. Throws NodeError when a node
  // fails; outputs computed before it stay cached. last_report() holds what ran either way.
  RunReport run(const nlohmann::json& prompt, RunContext& run);

  const RunReport& last_report() const { return last_report_; }
  // The outputs node `node_id` had in the last run, or nullptr when it has none cached.
  const Values* outputs(const std::string& node_id) const;
  size_t cache_size() const { return cache_.size(); }
  void clear_cache();

 private:
  // Interns the signature text of each node in `order`; returns node id -> cache key.
  std::map<std::string, uint64_t> signatures(const nlohmann::json& prompt,
                                             const std::vector<std::string>& order);

  const NodeRegistry& registry_;
  std::map<uint64_t, Values> cache_;           // cache key -> outputs
  std::map<std::string, uint64_t> interned_;   // signature text -> cache key
  std::map<std::string, uint64_t> last_keys_;  // node id -> cache key, last run
  uint64_t next_key_ = 1;
  RunReport last_report_;
};

}  // namespace wan::graph
