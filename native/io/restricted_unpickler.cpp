#include "io/restricted_unpickler.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "core/error.h"

namespace wan::io {
namespace {

using Kind = PickleValue::Kind;

// A state dict nests a few levels (dict -> tensor args -> size tuple); destroying or walking a
// value is recursive, so nesting is bounded far below what the stack could take.
constexpr int32_t kMaxPickleDepth = 256;
constexpr size_t kMaxTensorRank = 64;

PickleValuePtr make(Kind kind) {
  auto v = std::make_shared<PickleValue>();
  v->kind = kind;
  return v;
}

// Callables torch.save uses for a state dict; storage classes appear only as persistent-id parts.
const char* const kAllowedCallables[] = {
    "collections OrderedDict",
    "torch._utils _rebuild_tensor_v2",
    "torch._utils _rebuild_tensor",
    "torch._utils _rebuild_parameter",
};

struct StorageClass {
  const char* global;
  const char* dtype;
};
constexpr StorageClass kStorageClasses[] = {
    {"torch FloatStorage", "F32"},   {"torch DoubleStorage", "F64"}, {"torch HalfStorage", "F16"},
    {"torch BFloat16Storage", "BF16"}, {"torch LongStorage", "I64"},  {"torch IntStorage", "I32"},
    {"torch ShortStorage", "I16"},   {"torch CharStorage", "I8"},    {"torch ByteStorage", "U8"},
    {"torch BoolStorage", "BOOL"},
};

}  // namespace

std::string RestrictedUnpickler::storage_dtype(const std::string& global) {
  for (const auto& s : kStorageClasses)
    if (global == s.global) return s.dtype;
  return "";
}

RestrictedUnpickler::RestrictedUnpickler(const uint8_t* data, size_t size, std::string origin,
                                         PersistentLoad persistent_load)
    : data_(data), size_(size), origin_(std::move(origin)),
      persistent_load_(std::move(persistent_load)) {}

PickleValuePtr RestrictedUnpickler::load() {
  std::vector<PickleValuePtr> stack;
  std::vector<size_t> marks;
  std::unordered_map<uint64_t, PickleValuePtr> memo;
  size_t pos = 0;
  size_t op_offset = 0;

  auto fail = [&](const std::string& what) -> void {
    throw LoadError(origin_ + ": refused pickle at byte " + std::to_string(op_offset) + ": " + what);
  };
  auto need = [&](size_t n) {
    if (n > size_ - pos) fail("truncated pickle (needs " + std::to_string(n) + " more bytes)");
  };
  auto read_uint = [&](int bytes) -> uint64_t {
    need(bytes);
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | data_[pos + i];
    pos += bytes;
    return v;
  };
  auto read_bytes = [&](uint64_t n) -> std::string {
    need(n);
    std::string s(reinterpret_cast<const char*>(data_ + pos), n);
    pos += n;
    return s;
  };
  auto read_line = [&]() -> std::string {
    const size_t start = pos;
    while (pos < size_ && data_[pos] != '\n') ++pos;
    if (pos >= size_) fail("unterminated text line");
    return std::string(reinterpret_cast<const char*>(data_ + start), pos++ - start);
  };
  auto pop = [&]() -> PickleValuePtr {
    if (stack.empty() || (!marks.empty() && stack.size() <= marks.back())) fail("stack underflow");
    auto v = std::move(stack.back());
    stack.pop_back();
    return v;
  };
  auto top = [&]() -> PickleValuePtr& {
    if (stack.empty()) fail("stack underflow");
    return stack.back();
  };
  auto pop_mark = [&]() -> std::vector<PickleValuePtr> {
    if (marks.empty()) fail("no MARK on the stack");
    const size_t mark = marks.back();
    marks.pop_back();
    std::vector<PickleValuePtr> items(stack.begin() + mark, stack.end());
    stack.resize(mark);
    return items;
  };
  auto as_int = [&](const PickleValuePtr& v, const char* what) -> int64_t {
    if (!v || (v->kind != Kind::kInt && v->kind != Kind::kBool)) fail(std::string(what) + " is not an integer");
    return v->kind == Kind::kBool ? v->boolean : v->integer;
  };
  auto int_tuple = [&](const PickleValuePtr& v, const char* what) {
    if (!v || v->kind != Kind::kTuple) fail(std::string(what) + " is not a tuple");
    std::vector<int64_t> out;
    for (const auto& item : v->items) {
      const int64_t x = as_int(item, what);
      if (x < 0) fail(std::string(what) + " has a negative entry");
      out.push_back(x);
    }
    return out;
  };
  // Every insertion into a tuple, list or dict goes through here.
  auto adopt = [&](const PickleValuePtr& parent, const PickleValuePtr& child) {
    if (parent->contained)
      fail("a list or dict is changed after it was put inside another (refused: could form a cycle)");
    if (!child || child == parent) fail("a container is put inside itself");
    child->contained = true;
    parent->depth = std::max(parent->depth, child->depth + 1);
    if (parent->depth > kMaxPickleDepth)
      fail("values nest deeper than " + std::to_string(kMaxPickleDepth) + " levels");
  };
  auto push_global = [&](const std::string& module, const std::string& name) {
    const std::string full = module + " " + name;
    bool allowed = !storage_dtype(full).empty();
    for (const char* c : kAllowedCallables) allowed = allowed || full == c;
    if (!allowed)
      fail("global '" + module + "." + name +
           "' is not allowed (only what torch.save writes for a state dict is accepted)");
    auto v = make(Kind::kGlobal);
    v->text = full;
    stack.push_back(v);
  };
  auto rebuild_tensor = [&](const std::vector<PickleValuePtr>& args) -> PickleValuePtr {
    if (args.size() < 4) fail("_rebuild_tensor needs (storage, offset, size, stride)");
    const auto& storage = args[0];
    if (!storage || storage->kind != Kind::kStorage) fail("_rebuild_tensor: first argument is not a storage");
    const int64_t offset = as_int(args[1], "storage offset");
    const auto size = int_tuple(args[2], "tensor size");
    const auto stride = int_tuple(args[3], "tensor stride");
    if (size.size() != stride.size()) fail("tensor size and stride differ in length");
    if (size.size() > kMaxTensorRank) fail("tensor has more than 64 dimensions");
    // The view must stay inside its storage; a product or sum that overflows cannot.
    int64_t last = offset;
    bool empty = false;
    for (size_t i = 0; i < size.size(); ++i) {
      int64_t span = 0;
      if (size[i] == 0) empty = true;
      else if (__builtin_mul_overflow(size[i] - 1, stride[i], &span) ||
               __builtin_add_overflow(last, span, &last))
        fail("tensor size x stride overflows 64 bits");
    }
    if (offset < 0 || (!empty && last >= storage->numel))
      fail("tensor view (offset " + std::to_string(offset) + ") runs past its storage of " +
           std::to_string(storage->numel) + " elements");
    auto v = make(Kind::kTensor);
    v->shape = size;
    v->text = storage->text;
    if (storage->tensor.defined()) v->tensor = storage->tensor.as_strided(size, stride, offset);
    return v;
  };

  while (true) {
    op_offset = pos;
    need(1);
    const uint8_t op = data_[pos++];
    switch (op) {
      case 0x80: read_uint(1); break;  // PROTO
      case 0x95: read_uint(8); break;  // FRAME
      case '.': {                      // STOP
        auto result = pop();
        return result;
      }
      case '(': marks.push_back(stack.size()); break;  // MARK
      case 'N': stack.push_back(make(Kind::kNone)); break;
      case 0x88: case 0x89: {  // NEWTRUE / NEWFALSE
        auto v = make(Kind::kBool);
        v->boolean = op == 0x88;
        stack.push_back(v);
        break;
      }
      case 'J': case 'K': case 'M': {  // BININT, BININT1, BININT2
        auto v = make(Kind::kInt);
        if (op == 'J') v->integer = static_cast<int32_t>(read_uint(4));
        else v->integer = static_cast<int64_t>(read_uint(op == 'K' ? 1 : 2));
        stack.push_back(v);
        break;
      }
      case 0x8a: {  // LONG1
        const uint64_t n = read_uint(1);
        if (n > 8) fail("integer wider than 64 bits");
        uint64_t raw = n ? read_uint(static_cast<int>(n)) : 0;
        if (n > 0 && n < 8 && (raw >> (8 * n - 1)) & 1) raw |= ~uint64_t{0} << (8 * n);  // sign
        auto v = make(Kind::kInt);
        v->integer = static_cast<int64_t>(raw);
        stack.push_back(v);
        break;
      }
      case 'G': {  // BINFLOAT (big-endian double)
        need(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | data_[pos + i];
        pos += 8;
        auto v = make(Kind::kFloat);
        std::memcpy(&v->real, &bits, 8);
        stack.push_back(v);
        break;
      }
      case 'X': case 0x8c: case 0x8d: case 'T': case 'U': case 'B': case 'C': {
        // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, BINSTRING, SHORT_BINSTRING, BINBYTES, SHORT_BINBYTES
        const int width = (op == 0x8c || op == 'U' || op == 'C') ? 1 : op == 0x8d ? 8 : 4;
        auto v = make(Kind::kString);
        v->text = read_bytes(read_uint(width));
        stack.push_back(v);
        break;
      }
      case ')': stack.push_back(make(Kind::kTuple)); break;  // EMPTY_TUPLE
      case ']': stack.push_back(make(Kind::kList)); break;   // EMPTY_LIST
      case '}': stack.push_back(make(Kind::kDict)); break;   // EMPTY_DICT
      case 't': {  // TUPLE
        auto v = make(Kind::kTuple);
        v->items = pop_mark();
        for (const auto& item : v->items) adopt(v, item);
        stack.push_back(v);
        break;
      }
      case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
        auto v = make(Kind::kTuple);
        const int n = op - 0x84;
        v->items.resize(n);
        for (int i = n - 1; i >= 0; --i) v->items[i] = pop();
        for (const auto& item : v->items) adopt(v, item);
        stack.push_back(v);
        break;
      }
      case 'q': memo[read_uint(1)] = top(); break;   // BINPUT
      case 'r': memo[read_uint(4)] = top(); break;   // LONG_BINPUT
      case 0x94: memo[memo.size()] = top(); break;   // MEMOIZE
      case 'h': case 'j': {                          // BINGET, LONG_BINGET
        const uint64_t key = read_uint(op == 'h' ? 1 : 4);
        auto it = memo.find(key);
        if (it == memo.end()) fail("memo key " + std::to_string(key) + " missing");
        stack.push_back(it->second);
        break;
      }
      case 'c': {  // GLOBAL "module\nname\n"
        const std::string module = read_line();
        const std::string name = read_line();
        push_global(module, name);
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        auto name = pop();
        auto module = pop();
        if (name->kind != Kind::kString || module->kind != Kind::kString) fail("STACK_GLOBAL needs strings");
        push_global(module->text, name->text);
        break;
      }
      case 'Q': {  // BINPERSID
        auto pid = pop();
        if (!persistent_load_) fail("persistent id without a loader");
        stack.push_back(persistent_load_(*pid, op_offset));
        break;
      }
      case 'R': {  // REDUCE
        auto args = pop();
        auto callable = pop();
        if (callable->kind != Kind::kGlobal || args->kind != Kind::kTuple) fail("REDUCE of a non-callable");
        const std::string& f = callable->text;
        if (f == "collections OrderedDict") {
          if (!args->items.empty()) fail("OrderedDict called with arguments");
          stack.push_back(make(Kind::kDict));
        } else if (f == "torch._utils _rebuild_tensor_v2" || f == "torch._utils _rebuild_tensor") {
          stack.push_back(rebuild_tensor(args->items));
        } else if (f == "torch._utils _rebuild_parameter") {
          if (args->items.empty() || args->items[0]->kind != Kind::kTensor)
            fail("_rebuild_parameter needs a tensor");
          stack.push_back(args->items[0]);
        } else {
          fail("global '" + f + "' cannot be called");
        }
        break;
      }
      case 'b': {  // BUILD: state of an OrderedDict (its _metadata) carries no tensors
        auto state = pop();
        if (top()->kind != Kind::kDict) fail("BUILD on something other than a dict");
        break;
      }
      case 's': {  // SETITEM
        auto value = pop();
        auto key = pop();
        if (top()->kind != Kind::kDict) fail("SETITEM on a non-dict");
        adopt(top(), key);
        adopt(top(), value);
        top()->entries.emplace_back(key, value);
        break;
      }
      case 'u': {  // SETITEMS
        auto items = pop_mark();
        if (items.size() % 2) fail("SETITEMS with an odd number of items");
        if (top()->kind != Kind::kDict) fail("SETITEMS on a non-dict");
        for (size_t i = 0; i < items.size(); i += 2) {
          adopt(top(), items[i]);
          adopt(top(), items[i + 1]);
          top()->entries.emplace_back(items[i], items[i + 1]);
        }
        break;
      }
      case 'a': {  // APPEND
        auto value = pop();
        if (top()->kind != Kind::kList) fail("APPEND on a non-list");
        adopt(top(), value);
        top()->items.push_back(value);
        break;
      }
      case 'e': {  // APPENDS
        auto items = pop_mark();
        if (top()->kind != Kind::kList) fail("APPENDS on a non-list");
        for (auto& item : items) {
          adopt(top(), item);
          top()->items.push_back(item);
        }
        break;
      }
      default: {
        char hex[8];
        std::snprintf(hex, sizeof(hex), "0x%02x", op);
        fail(std::string("opcode ") + hex + " is not allowed");
      }
    }
    if (stack.size() > (size_t{1} << 24)) fail("stack too deep");
  }
}

}  // namespace wan::io
