#include "weights/pickle_reader.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <unordered_map>

#include "wan/error.h"

namespace wan {
namespace {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

enum class Kind { kNone, kBool, kInt, kFloat, kString, kBytes, kTuple, kList, kDict, kGlobal, kStorage, kTensor };

// How deep containers may nest. A state_dict is a dict of tensors (depth 2; the tensors' argument
// tuples 3-4); 100 leaves room for any real checkpoint. A hostile pickle nested 100 000 deep
// (../shared/bad-inputs/t5_deep_nested_lists_100k.pth) is refused at depth 101.
constexpr std::uint32_t kMaxNesting = 100;

struct Value {
  Kind kind = Kind::kNone;
  std::uint32_t depth = 0;  // 0 for a scalar; a container: 1 + its deepest item when that was added
  std::int64_t i = 0;
  double f = 0;
  std::string s;  // string, bytes, or "module.name" for a global
  std::vector<ValuePtr> items;
  std::vector<std::pair<ValuePtr, ValuePtr>> dict;
  PickledTensor tensor;  // kStorage uses storage_key/dtype/storage_numel

  Value() = default;
  Value(const Value&) = delete;
  Value& operator=(const Value&) = delete;
  // Frees nested values with a work list instead of recursion: a deep structure (however it got
  // past the depth check, e.g. through the memo) cannot overflow the stack when it is released.
  ~Value() {
    std::vector<ValuePtr> pending;
    auto adopt = [&pending](Value& v) {
      for (ValuePtr& x : v.items) pending.push_back(std::move(x));
      for (auto& [k, x] : v.dict) {
        pending.push_back(std::move(k));
        pending.push_back(std::move(x));
      }
      v.items.clear();
      v.dict.clear();
    };
    adopt(*this);
    while (!pending.empty()) {
      ValuePtr v = std::move(pending.back());
      pending.pop_back();
      if (v && v.use_count() == 1) adopt(*v);  // its last owner: take its children before it goes
    }
  }
};

ValuePtr make(Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

struct StorageClass {
  const char* name;
  StoredDType dtype;
};
constexpr StorageClass kStorageClasses[] = {
    {"FloatStorage", StoredDType::kF32},
    {"DoubleStorage", StoredDType::kF64},
    {"HalfStorage", StoredDType::kF16},
    {"BFloat16Storage", StoredDType::kBF16},
    {"LongStorage", StoredDType::kI64},
    {"IntStorage", StoredDType::kI32},
    {"ShortStorage", StoredDType::kI16},
    {"CharStorage", StoredDType::kI8},
    {"ByteStorage", StoredDType::kU8},
    {"BoolStorage", StoredDType::kBool},
    {"Float8_e4m3fnStorage", StoredDType::kF8E4M3},
    {"Float8_e5m2Storage", StoredDType::kF8E5M2},
};

bool is_allowed_global(const std::string& g) {
  if (g == "collections.OrderedDict" || g == "torch._utils._rebuild_tensor_v2" ||
      g == "torch._utils._rebuild_parameter")
    return true;
  for (const StorageClass& sc : kStorageClasses)
    if (g == std::string("torch.") + sc.name) return true;
  return false;
}

class Unpickler {
 public:
  Unpickler(const std::uint8_t* data, std::size_t size, std::string context)
      : p_(data), end_(data + size), begin_(data), context_(std::move(context)) {}
  Unpickler(const Unpickler&) = delete;
  Unpickler& operator=(const Unpickler&) = delete;
  // A pickle can make a container hold itself (through the memo: APPEND of a memoized list to that
  // list); shared ownership alone would never free such a cycle. Every container this run made is
  // emptied here, which breaks every cycle (found by fuzz_unpickler as a leak).
  ~Unpickler() {
    std::vector<ValuePtr> children;
    for (const std::weak_ptr<Value>& weak : created_)
      if (const ValuePtr v = weak.lock()) {
        for (ValuePtr& x : v->items) children.push_back(std::move(x));
        for (auto& [k, x] : v->dict) {
          children.push_back(std::move(k));
          children.push_back(std::move(x));
        }
        v->items.clear();
        v->dict.clear();
      }
  }

  ValuePtr run();

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(ErrorCode::kCorruptFile, context_ + ": " + what + " (pickle byte " + std::to_string(p_ - begin_) + ")");
  }
  const std::uint8_t* take(std::size_t n) {
    if (static_cast<std::size_t>(end_ - p_) < n) fail("pickle is truncated");
    const std::uint8_t* r = p_;
    p_ += n;
    return r;
  }
  std::uint64_t uint_le(std::size_t n) {
    const std::uint8_t* b = take(n);
    std::uint64_t v = 0;
    for (std::size_t k = n; k-- > 0;) v = (v << 8) | b[k];
    return v;
  }
  std::string line() {
    const std::uint8_t* start = p_;
    while (p_ < end_ && *p_ != '\n') ++p_;
    if (p_ == end_) fail("pickle is truncated");
    std::string s(reinterpret_cast<const char*>(start), p_ - start);
    ++p_;
    return s;
  }
  ValuePtr pop() {
    if (stack_.size() <= mark_floor()) fail("pickle stack underflow");
    ValuePtr v = stack_.back();
    stack_.pop_back();
    return v;
  }
  ValuePtr& top() {
    if (stack_.size() <= mark_floor()) fail("pickle stack underflow");
    return stack_.back();
  }
  std::size_t mark_floor() const { return marks_.empty() ? 0 : marks_.back(); }
  std::vector<ValuePtr> pop_to_mark() {
    if (marks_.empty()) fail("pickle MARK missing");
    std::vector<ValuePtr> items(stack_.begin() + marks_.back(), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  // `container` now holds `item`: its depth grows to cover it, within kMaxNesting.
  void nest(Value& container, const ValuePtr& item) {
    const std::uint32_t d = item ? item->depth + 1 : 1;
    if (d > kMaxNesting) fail("values nested more than " + std::to_string(kMaxNesting) + " deep");
    container.depth = std::max(container.depth, d);
  }
  ValuePtr tuple_of(std::vector<ValuePtr> items) {
    ValuePtr t = make(Kind::kTuple);
    for (const ValuePtr& x : items) nest(*t, x);
    t->items = std::move(items);
    return t;
  }
  ValuePtr global(const std::string& module, const std::string& name);
  ValuePtr reduce(const ValuePtr& callable, const ValuePtr& args);
  ValuePtr persistent_load(const ValuePtr& pid);
  std::int64_t as_int(const ValuePtr& v, const char* what) {
    if (v->kind != Kind::kInt && v->kind != Kind::kBool) fail(std::string(what) + " is not an integer");
    return v->i;
  }
  std::vector<std::int64_t> int_tuple(const ValuePtr& v, const char* what) {
    if (v->kind != Kind::kTuple && v->kind != Kind::kList) fail(std::string(what) + " is not a tuple");
    std::vector<std::int64_t> out;
    for (const ValuePtr& x : v->items) out.push_back(as_int(x, what));
    return out;
  }

  const std::uint8_t* p_;
  const std::uint8_t* end_;
  const std::uint8_t* begin_;
  std::string context_;
  std::vector<ValuePtr> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint64_t, ValuePtr> memo_;
  std::vector<std::weak_ptr<Value>> created_;  // every value made by this run (the destructor's list)

  // The free make(), remembered for the destructor.
  ValuePtr make(Kind k) {
    ValuePtr v = wan::make(k);
    created_.push_back(v);
    return v;
  }
};

ValuePtr Unpickler::global(const std::string& module, const std::string& name) {
  const std::string full = module + "." + name;
  if (!is_allowed_global(full))
    throw Error(ErrorCode::kUnsupported,
                context_ + ": pickle refers to '" + full +
                    "', which a tensor state_dict never needs; refusing to load it (this reader runs no code)");
  ValuePtr g = make(Kind::kGlobal);
  g->s = full;
  return g;
}

ValuePtr Unpickler::persistent_load(const ValuePtr& pid) {
  // ('storage', <torch.XStorage>, key, location, numel)
  if (pid->kind != Kind::kTuple || pid->items.size() < 5 || pid->items[0]->kind != Kind::kString ||
      pid->items[0]->s != "storage")
    fail("unsupported persistent id (expected a tensor storage)");
  const ValuePtr& type = pid->items[1];
  if (type->kind != Kind::kGlobal) fail("storage type is not a torch storage class");
  ValuePtr st = make(Kind::kStorage);
  bool known = false;
  for (const StorageClass& sc : kStorageClasses) {
    if (type->s == std::string("torch.") + sc.name) {
      st->tensor.dtype = sc.dtype;
      known = true;
    }
  }
  if (!known) fail("unknown storage class '" + type->s + "'");
  if (pid->items[2]->kind != Kind::kString) fail("storage key is not a string");
  st->tensor.storage_key = pid->items[2]->s;
  st->tensor.storage_numel = as_int(pid->items[4], "storage size");
  return st;
}

ValuePtr Unpickler::reduce(const ValuePtr& callable, const ValuePtr& args) {
  if (callable->kind != Kind::kGlobal) fail("REDUCE on a non-callable");
  if (args->kind != Kind::kTuple) fail("REDUCE arguments are not a tuple");
  const std::string& fn = callable->s;
  if (fn == "collections.OrderedDict") {
    ValuePtr d = make(Kind::kDict);
    return d;
  }
  if (fn == "torch._utils._rebuild_tensor_v2") {
    if (args->items.size() < 4 || args->items[0]->kind != Kind::kStorage)
      fail("_rebuild_tensor_v2 called with unexpected arguments");
    ValuePtr t = make(Kind::kTensor);
    t->tensor = args->items[0]->tensor;
    t->tensor.storage_offset = as_int(args->items[1], "storage offset");
    t->tensor.shape = int_tuple(args->items[2], "tensor size");
    t->tensor.stride = int_tuple(args->items[3], "tensor stride");
    if (t->tensor.shape.size() != t->tensor.stride.size()) fail("tensor size and stride differ in length");
    return t;
  }
  if (fn == "torch._utils._rebuild_parameter") {
    if (args->items.empty() || args->items[0]->kind != Kind::kTensor) fail("_rebuild_parameter without a tensor");
    return args->items[0];
  }
  // Storage classes are only valid inside persistent ids.
  fail("'" + fn + "' cannot be called here");
}

ValuePtr Unpickler::run() {
  while (true) {
    const std::uint8_t op = *take(1);
    switch (op) {
      case 0x80:
        take(1);
        break;  // PROTO
      case 0x95:
        take(8);
        break;     // FRAME
      case '.': {  // STOP
        if (stack_.size() != 1) fail("pickle ended with a malformed stack");
        return stack_.back();
      }
      case '(':
        marks_.push_back(stack_.size());
        break;  // MARK
      case ')':
        stack_.push_back(make(Kind::kTuple));
        break;
      case 't':
        stack_.push_back(tuple_of(pop_to_mark()));
        break;
      case 0x85: {
        auto a = pop();
        stack_.push_back(tuple_of({a}));
        break;
      }
      case 0x86: {
        auto b = pop();
        auto a = pop();
        stack_.push_back(tuple_of({a, b}));
        break;
      }
      case 0x87: {
        auto c = pop();
        auto b = pop();
        auto a = pop();
        stack_.push_back(tuple_of({a, b, c}));
        break;
      }
      case '}':
        stack_.push_back(make(Kind::kDict));
        break;
      case ']':
        stack_.push_back(make(Kind::kList));
        break;
      case 'a': {
        auto v = pop();
        auto& l = top();
        if (l->kind != Kind::kList) fail("APPEND to a non-list");
        nest(*l, v);
        l->items.push_back(v);
        break;
      }
      case 'e': {
        auto items = pop_to_mark();
        auto& l = top();
        if (l->kind != Kind::kList) fail("APPENDS to a non-list");
        for (const ValuePtr& x : items) nest(*l, x);
        l->items.insert(l->items.end(), items.begin(), items.end());
        break;
      }
      case 's': {
        auto v = pop();
        auto k = pop();
        auto& d = top();
        if (d->kind != Kind::kDict) fail("SETITEM on a non-dict");
        nest(*d, k);
        nest(*d, v);
        d->dict.emplace_back(k, v);
        break;
      }
      case 'u': {
        auto items = pop_to_mark();
        auto& d = top();
        if (d->kind != Kind::kDict) fail("SETITEMS on a non-dict");
        if (items.size() % 2 != 0) fail("SETITEMS with an odd item count");
        for (const ValuePtr& x : items) nest(*d, x);
        for (std::size_t k = 0; k < items.size(); k += 2) d->dict.emplace_back(items[k], items[k + 1]);
        break;
      }
      case 'c': {
        std::string module = line();
        std::string name = line();
        stack_.push_back(global(module, name));
        break;
      }
      case 0x93: {
        auto name = pop();
        auto module = pop();
        if (name->kind != Kind::kString || module->kind != Kind::kString) fail("STACK_GLOBAL needs strings");
        stack_.push_back(global(module->s, name->s));
        break;
      }
      case 'q':
        memo_[uint_le(1)] = top();
        break;
      case 'r':
        memo_[uint_le(4)] = top();
        break;
      case 0x94:
        memo_[memo_.size()] = top();
        break;
      case 'h':
      case 'j': {
        const auto key = uint_le(op == 'h' ? 1 : 4);
        auto it = memo_.find(key);
        if (it == memo_.end()) fail("memo key " + std::to_string(key) + " missing");
        stack_.push_back(it->second);
        break;
      }
      case 'K': {
        auto v = make(Kind::kInt);
        v->i = static_cast<std::int64_t>(uint_le(1));
        stack_.push_back(v);
        break;
      }
      case 'M': {
        auto v = make(Kind::kInt);
        v->i = static_cast<std::int64_t>(uint_le(2));
        stack_.push_back(v);
        break;
      }
      case 'J': {
        auto v = make(Kind::kInt);
        v->i = static_cast<std::int32_t>(uint_le(4));
        stack_.push_back(v);
        break;
      }
      case 0x8a: {  // LONG1: little-endian two's complement of n bytes
        const std::size_t n = uint_le(1);
        if (n > 8) fail("integer too large");
        const std::uint8_t* b = take(n);
        std::uint64_t u = 0;
        for (std::size_t k = n; k-- > 0;) u = (u << 8) | b[k];
        if (n > 0 && n < 8 && (b[n - 1] & 0x80)) u |= ~std::uint64_t(0) << (8 * n);
        auto v = make(Kind::kInt);
        v->i = static_cast<std::int64_t>(u);
        stack_.push_back(v);
        break;
      }
      case 0x88:
      case 0x89: {
        auto v = make(Kind::kBool);
        v->i = op == 0x88;
        stack_.push_back(v);
        break;
      }
      case 'N':
        stack_.push_back(make(Kind::kNone));
        break;
      case 'X':
      case 0x8c:
      case 0x8d:
      case 'T':
      case 'U':
      case 'B':
      case 'C': {
        std::size_t n = 0;
        if (op == 'X' || op == 'T' || op == 'B')
          n = uint_le(4);
        else if (op == 0x8d)
          n = uint_le(8);
        else
          n = uint_le(1);
        const std::uint8_t* b = take(n);
        auto v = make((op == 'B' || op == 'C') ? Kind::kBytes : Kind::kString);
        v->s.assign(reinterpret_cast<const char*>(b), n);
        stack_.push_back(v);
        break;
      }
      case 'G': {
        std::uint64_t u = 0;
        const std::uint8_t* b = take(8);
        for (int k = 0; k < 8; ++k) u = (u << 8) | b[k];  // big-endian
        auto v = make(Kind::kFloat);
        std::memcpy(&v->f, &u, 8);
        stack_.push_back(v);
        break;
      }
      case 'Q': {
        auto pid = pop();
        stack_.push_back(persistent_load(pid));
        break;
      }
      case 'R': {
        auto args = pop();
        auto fn = pop();
        stack_.push_back(reduce(fn, args));
        break;
      }
      case 'b': {
        pop();
        top();
        break;
      }  // BUILD: object state (e.g. OrderedDict._metadata) is not needed
      case '0':
        pop();
        break;
      case '1':
        pop_to_mark();
        break;
      case '2':
        stack_.push_back(top());
        break;
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        fail(std::string("unsupported pickle opcode ") + hex);
      }
    }
  }
}

}  // namespace

const char* storage_class_name(StoredDType dtype) {
  for (const StorageClass& sc : kStorageClasses)
    if (sc.dtype == dtype) return sc.name;
  return "FloatStorage";
}

std::vector<std::pair<std::string, PickledTensor>> read_state_dict_pickle(const std::uint8_t* data,
                                                                          std::size_t size_bytes,
                                                                          const std::string& context) {
  Unpickler up(data, size_bytes, context);
  ValuePtr root = up.run();
  if (root->kind != Kind::kDict)
    throw Error(ErrorCode::kCorruptFile, context + ": the pickle does not hold a state_dict (dictionary of tensors)");
  // Training checkpoints wrap the weights: {"state_dict": {...}} or {"model": {...}}.
  for (const char* wrapper : {"state_dict", "model", "module"}) {
    for (const auto& [k, v] : root->dict)
      if (k->kind == Kind::kString && k->s == wrapper && v->kind == Kind::kDict) {
        root = v;
        break;
      }
  }
  std::vector<std::pair<std::string, PickledTensor>> out;
  for (const auto& [k, v] : root->dict)
    if (k->kind == Kind::kString && v->kind == Kind::kTensor) out.emplace_back(k->s, v->tensor);
  return out;
}

}  // namespace wan
