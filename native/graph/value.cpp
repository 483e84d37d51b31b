#include "graph/value.h"

#include "core/error.h"

namespace wan::graph {

namespace {

const char* kind_name(Value::Kind kind) {
  switch (kind) {
    case Value::Kind::kNone:
      return "NONE";
    case Value::Kind::kInt:
      return "INT";
    case Value::Kind::kFloat:
      return "FLOAT";
    case Value::Kind::kBool:
      return "BOOLEAN";
    case Value::Kind::kString:
      return "STRING";
    case Value::Kind::kTensor:
      return "TENSOR";
    case Value::Kind::kObject:
      return "OBJECT";
  }
  return "?";
}

}  // namespace

std::string Value::type_name() const {
  if (kind() == Kind::kObject) {
    const auto& object = std::get<std::shared_ptr<const Object>>(data_);
    return object ? object->type() : "NONE";
  }
  return kind_name(kind());
}

#define WAN_VALUE_EXPECT(kind_value, expected)                                             \
  if (kind() != (kind_value)) {                                                            \
    throw ValidationError(std::string("expected ") + (expected) + ", got " + type_name()); \
  }

int64_t Value::as_int() const {
  WAN_VALUE_EXPECT(Kind::kInt, "INT");
  return std::get<int64_t>(data_);
}

double Value::as_float() const {
  if (kind() == Kind::kInt) return static_cast<double>(std::get<int64_t>(data_));
  WAN_VALUE_EXPECT(Kind::kFloat, "FLOAT");
  return std::get<double>(data_);
}

bool Value::as_bool() const {
  WAN_VALUE_EXPECT(Kind::kBool, "BOOLEAN");
  return std::get<bool>(data_);
}

const std::string& Value::as_string() const {
  WAN_VALUE_EXPECT(Kind::kString, "STRING");
  return std::get<std::string>(data_);
}

const at::Tensor& Value::as_tensor() const {
  WAN_VALUE_EXPECT(Kind::kTensor, "a tensor");
  return std::get<at::Tensor>(data_);
}

const std::shared_ptr<const Object>& Value::as_object() const {
  WAN_VALUE_EXPECT(Kind::kObject, "an object");
  return std::get<std::shared_ptr<const Object>>(data_);
}

#undef WAN_VALUE_EXPECT

const Value& Values::operator[](size_t index) const {
  if (index >= items_.size()) {
    throw ValidationError((owner_.empty() ? std::string("outputs") : owner_ + " outputs") +
                          ": index " + std::to_string(index) + " out of range (" +
                          std::to_string(items_.size()) + " outputs)");
  }
  return items_[index];
}

bool Values::has(const std::string& name) const {
  auto it = named_.find(name);
  return it != named_.end() && !it->second.is_none();
}

std::string Values::where(const std::string& name) const {
  return (owner_.empty() ? std::string() : owner_ + " ") + "input '" + name + "'";
}

const Value& Values::get(const std::string& name) const {
  auto it = named_.find(name);
  if (it == named_.end() || it->second.is_none()) {
    throw ValidationError(where(name) + ": no value; connect it or set it");
  }
  return it->second;
}

// Re-throws a kind mismatch from Value with the node and input in front.
// (get() already names the input when the value is missing.)
#define WAN_VALUES_READ(method)                           \
  const Value& value = get(name);                         \
  try {                                                   \
    return value.method();                                \
  } catch (const ValidationError& e) {                    \
    throw ValidationError(where(name) + ": " + e.what()); \
  }

int64_t Values::integer(const std::string& name) const { WAN_VALUES_READ(as_int); }
double Values::number(const std::string& name) const { WAN_VALUES_READ(as_float); }
const std::string& Values::string(const std::string& name) const { WAN_VALUES_READ(as_string); }
const at::Tensor& Values::tensor(const std::string& name) const { WAN_VALUES_READ(as_tensor); }
const std::shared_ptr<const Object>& Values::get_object(const std::string& name) const {
  WAN_VALUES_READ(as_object);
}

#undef WAN_VALUES_READ

void Values::throw_wrong_object(const std::string& name) const {
  throw ValidationError(where(name) + ": got " + get(name).type_name() +
                        ", which this node cannot use");
}

}  // namespace wan::graph
