// What flows through node ports: numbers, strings, tensors and typed shared objects.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

namespace wan::graph {

// Base of everything a socket carries that is not a plain tensor or scalar: model handles,
// conditioning structs. `type()` is the socket type name (e.g. "WAN_VAE"), used in messages.
class Object {
 public:
  virtual ~Object() = default;
  virtual std::string type() const = 0;
};

// One port value. Objects are shared and immutable once produced, so a cached output can feed any
// number of later runs without copies.
class Value {
 public:
  enum class Kind { kNone, kInt, kFloat, kBool, kString, kTensor, kObject };

  Value() = default;
  Value(int v) : data_(static_cast<int64_t>(v)) {}
  Value(int64_t v) : data_(v) {}
  Value(double v) : data_(v) {}
  Value(bool v) : data_(v) {}
  Value(const char* v) : data_(std::string(v)) {}
  Value(std::string v) : data_(std::move(v)) {}
  Value(at::Tensor v) : data_(std::move(v)) {}
  template <class T, class = std::enable_if_t<std::is_base_of_v<Object, T>>>
  Value(std::shared_ptr<T> v) : data_(std::shared_ptr<const Object>(std::move(v))) {}

  Kind kind() const { return static_cast<Kind>(data_.index()); }
  bool is_none() const { return kind() == Kind::kNone; }
  // "INT", "FLOAT", "BOOLEAN", "STRING", "TENSOR", an object's type(), or "NONE".
  std::string type_name() const;

  // Typed reads; throw ValidationError("expected INT, got STRING") on a kind mismatch. `Values`
  // adds the node and input name to that message.
  int64_t as_int() const;
  double as_float() const;  // an INT reads as FLOAT too (exact for |v| < 2^53)
  bool as_bool() const;
  const std::string& as_string() const;
  const at::Tensor& as_tensor() const;
  const std::shared_ptr<const Object>& as_object() const;

 private:
  std::variant<std::monostate, int64_t, double, bool, std::string, at::Tensor,
               std::shared_ptr<const Object>>
      data_;
};

// A node's inputs (by input id) or outputs (by position). Every accessor names the node and the
// input in its error, so a node's execute() can read inputs without checks of its own.
class Values {
 public:
  Values() = default;
  // Positional outputs: `return {latent};`
  Values(std::initializer_list<Value> outputs) : items_(outputs) {}

  // --- positional (outputs)
  size_t size() const { return items_.size(); }
  const Value& operator[](size_t index) const;
  void push_back(Value v) { items_.push_back(std::move(v)); }

  // --- named (inputs)
  void set(const std::string& name, Value v) { named_[name] = std::move(v); }
  bool has(const std::string& name) const;  // present and not None
  const Value& get(const std::string& name) const;
  int64_t integer(const std::string& name) const;
  double number(const std::string& name) const;
  const std::string& string(const std::string& name) const;
  const at::Tensor& tensor(const std::string& name) const;
  // The object on `name`, as T; throws naming the input and the type it got.
  template <class T>
  std::shared_ptr<const T> object(const std::string& name) const {
    auto typed = std::dynamic_pointer_cast<const T>(get_object(name));
    if (!typed) throw_wrong_object(name);
    return typed;
  }
  const std::map<std::string, Value>& named() const { return named_; }

  // Who owns these values, for messages: "Sample (node 12)".
  void set_owner(std::string owner) { owner_ = std::move(owner); }
  const std::string& owner() const { return owner_; }

 private:
  const std::shared_ptr<const Object>& get_object(const std::string& name) const;
  [[noreturn]] void throw_wrong_object(const std::string& name) const;
  std::string where(const std::string& name) const;

  std::vector<Value> items_;
  std::map<std::string, Value> named_;
  std::string owner_;
};

}  // namespace wan::graph
