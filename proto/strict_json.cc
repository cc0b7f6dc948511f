#include "proto/strict_json.h"

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace churnlab {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// What a JSON value in some place may be.
struct Slot {
  enum Kind { kAny, kScalar, kList, kObject, kMap } kind = kAny;
  const Descriptor* message = nullptr;  // kObject; kList/kMap when their items are messages
  std::string field;                    // for errors; "" at the top
};

// The JSON form of a field's single value: messages are objects, except the well-known types
// whose JSON form is a string or a number (Duration, Timestamp, the wrappers).
Slot ItemSlot(const FieldDescriptor& field) {
  Slot slot{Slot::kScalar, nullptr, field.name()};
  if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
      field.message_type()->file()->package() != "google.protobuf") {
    slot.kind = Slot::kObject;
    slot.message = field.message_type();
  }
  return slot;
}

// The field a JSON key names: its proto name or its JSON name (`max_in_flight`, `maxInFlight`),
// the two spellings protobuf's parser accepts.
const FieldDescriptor* FieldOfKey(const Descriptor& message, const std::string& key) {
  if (const FieldDescriptor* field = message.FindFieldByName(key)) return field;
  for (int i = 0; i < message.field_count(); ++i) {
    if (message.field(i)->json_name() == key) return message.field(i);
  }
  return nullptr;
}

Slot SlotOf(const FieldDescriptor& field) {
  if (field.is_map()) {
    Slot item = ItemSlot(*field.message_type()->map_value());
    return Slot{Slot::kMap, item.message, field.name()};
  }
  if (field.is_repeated()) {
    Slot item = ItemSlot(field);
    return Slot{Slot::kList, item.message, field.name()};
  }
  return ItemSlot(field);
}

class ShapeChecker : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit ShapeChecker(const Descriptor& root) : root_(root) {}
  absl::Status status() const { return status_; }

  bool null() override { return Value(kNull); }
  bool boolean(bool) override { return Value(kScalarValue); }
  bool number_integer(number_integer_t) override { return Value(kScalarValue); }
  bool number_unsigned(number_unsigned_t) override { return Value(kScalarValue); }
  bool number_float(number_float_t, const string_t&) override { return Value(kScalarValue); }
  bool string(string_t&) override { return Value(kScalarValue); }
  bool binary(binary_t&) override { return Value(kScalarValue); }
  bool start_object(std::size_t) override { return Value(kObjectValue) && Push(true); }
  bool start_array(std::size_t) override { return Value(kArrayValue) && Push(false); }
  bool end_object() override { return Pop(); }
  bool end_array() override { return Pop(); }

  bool key(string_t& key) override {
    Frame& frame = frames_.back();
    std::string canonical = key;
    frame.next = Slot{Slot::kAny, nullptr, key};
    if (frame.slot.kind == Slot::kObject) {
      const FieldDescriptor* field = FieldOfKey(*frame.slot.message, key);
      if (field != nullptr) {
        canonical = field->name();
        frame.next = SlotOf(*field);
      }
    } else if (frame.slot.kind == Slot::kMap) {
      frame.next = frame.slot.message != nullptr
                       ? Slot{Slot::kObject, frame.slot.message, frame.slot.field}
                       : Slot{Slot::kScalar, nullptr, frame.slot.field};
    }
    auto [previous, inserted] = frame.keys.emplace(canonical, key);
    if (inserted) return true;
    std::string spelled =
        previous->second == key
            ? absl::StrCat("\"", key, "\" appears twice")
            : absl::StrCat("\"", previous->second, "\" and \"", key, "\" are the same field");
    return Fail(absl::StrCat(Path(canonical), ": given twice (", spelled,
                             " in one object); give each field once"));
  }

  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& error) override {
    // nlohmann's message reads "[json.exception.parse_error.101] parse error at line 1, ...".
    std::string what = error.what();
    size_t bracket = what.find("] ");
    if (bracket != std::string::npos) what = what.substr(bracket + 2);
    return Fail(absl::StrCat("spec: not JSON at byte ", position, ": ", what));
  }

 private:
  enum ValueKind { kNull, kScalarValue, kArrayValue, kObjectValue };
  struct Frame {
    Slot slot;  // what this object or array is
    bool object = false;
    std::map<std::string, std::string> keys;  // canonical field name -> key as written
    Slot next;                                // the slot of the value after the last key
  };

  // The slot the next value fills: the top, the key just read, or an item of the list.
  Slot NextSlot() const {
    if (frames_.empty()) return Slot{Slot::kObject, &root_, ""};
    const Frame& frame = frames_.back();
    if (frame.object) return frame.next;
    if (frame.slot.kind == Slot::kList) {
      return frame.slot.message != nullptr
                 ? Slot{Slot::kObject, frame.slot.message, frame.slot.field}
                 : Slot{Slot::kScalar, nullptr, frame.slot.field};
    }
    return Slot{Slot::kAny, nullptr, frame.slot.field};
  }

  bool Value(ValueKind kind) {
    current_ = NextSlot();
    if (kind == kNull || current_.kind == Slot::kAny) return true;
    bool in_list = !frames_.empty() && !frames_.back().object;
    const char* what = kind == kArrayValue    ? "an array"
                       : kind == kObjectValue ? "an object"
                                              : "a single value";
    switch (current_.kind) {
      case Slot::kScalar:
        if (kind == kScalarValue) return true;
        return Fail(absl::StrCat(Path(current_.field), ": ", what,
                                 in_list ? " inside the list; it takes a list of single values"
                                         : " where a single value belongs"));
      case Slot::kList:
        if (kind == kArrayValue) return true;
        return Fail(absl::StrCat(Path(current_.field), ": ", what, " where a list belongs"));
      case Slot::kObject:
      case Slot::kMap:
        if (kind == kObjectValue) return true;
        return Fail(
            current_.field.empty()
                ? absl::StrCat("spec: ", what, " where a JSON object belongs")
                : absl::StrCat(Path(current_.field), ": ", what, " where an object belongs"));
      case Slot::kAny:
        return true;
    }
    return true;
  }

  bool Push(bool object) {
    if (static_cast<int>(frames_.size()) >= kMaxJsonDepth) {
      return Fail(absl::StrCat("spec: nested deeper than ", kMaxJsonDepth, " levels"));
    }
    Frame frame;
    frame.slot = current_;
    frame.object = object;
    frames_.push_back(std::move(frame));
    return true;
  }

  bool Pop() {
    frames_.pop_back();
    return true;
  }

  // "targets", or "outer.inner" inside nested objects.
  std::string Path(const std::string& field) const {
    std::string path;
    for (const Frame& frame : frames_) {
      if (!frame.slot.field.empty() && frame.object) absl::StrAppend(&path, frame.slot.field, ".");
    }
    return path + field;
  }

  bool Fail(std::string message) {
    if (status_.ok()) status_ = absl::InvalidArgumentError(std::move(message));
    return false;
  }

  const Descriptor& root_;
  std::vector<Frame> frames_;
  Slot current_;
  absl::Status status_;
};

}  // namespace

absl::Status CheckJsonShape(absl::string_view json, const Descriptor& message) {
  ShapeChecker checker(message);
  bool ok = nlohmann::json::sax_parse(json.begin(), json.end(), &checker);
  if (!checker.status().ok()) return checker.status();
  if (!ok) return absl::InvalidArgumentError("spec: not JSON");
  return absl::OkStatus();
}

}  // namespace churnlab
