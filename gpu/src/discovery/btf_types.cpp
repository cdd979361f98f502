#include "btf_types.h"

#include <bpf/btf.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <stdexcept>

namespace grass {

BtfTypes::BtfTypes(const std::vector<uint8_t>& raw) {
  btf_ = btf__new(raw.data(), (uint32_t)raw.size());
  if (!btf_) throw std::runtime_error(std::string("BTF blob (") + std::to_string(raw.size()) + " bytes) does not parse: " + strerror(errno));
}

BtfTypes::~BtfTypes() { btf__free(btf_); }

int32_t BtfTypes::struct_id(const char* name) const {
  int32_t id = btf__find_by_name_kind(btf_, name, BTF_KIND_STRUCT);
  if (id < 0) throw std::runtime_error(std::string("BTF has no struct ") + name);
  return id;
}

// One path component at a time; anonymous members are searched recursively.
bool BtfTypes::find(int32_t id, const std::string& path, Field* out) const {
  size_t dot = path.find('.');
  std::string head = path.substr(0, dot);
  std::function<bool(int32_t, uint32_t, Field*)> search = [&](int32_t sid, uint32_t base, Field* f) -> bool {
    const struct btf_type* t = btf__type_by_id(btf_, sid);
    if (!t || (!btf_is_struct(t) && !btf_is_union(t))) return false;
    const struct btf_member* m = btf_members(t);
    for (uint16_t i = 0; i < btf_vlen(t); i++, m++) {
      uint32_t off = base + btf_member_bit_offset(t, i) / 8;
      int32_t mtype = btf__resolve_type(btf_, m->type);
      const char* mname = btf__name_by_offset(btf_, m->name_off);
      if (mname && *mname) {
        if (head == mname) {
          f->offset = off;
          f->type_id = mtype;
          long size = btf__resolve_size(btf_, m->type);
          f->size = size < 0 ? 0 : (uint32_t)size;
          return true;
        }
      } else if (search(mtype, off, f)) {
        return true;
      }
    }
    return false;
  };
  Field f{};
  if (!search(id, 0, &f)) return false;
  if (dot == std::string::npos) { *out = f; return true; }
  Field inner;
  if (!find(f.type_id, path.substr(dot + 1), &inner)) return false;
  inner.offset += f.offset;
  *out = inner;
  return true;
}

Field BtfTypes::field(const char* struct_name, std::initializer_list<const char*> alternatives) const {
  int32_t id = struct_id(struct_name);
  std::string tried;
  for (const char* a : alternatives) {
    Field f;
    if (find(id, a, &f)) { f.name = a; return f; }
    tried += tried.empty() ? a : std::string(" / ") + a;
  }
  throw std::runtime_error(std::string("BTF: struct ") + struct_name + " has no field " + tried);
}

bool BtfTypes::has_field(const char* struct_name, const char* path) const {
  int32_t id = btf__find_by_name_kind(btf_, struct_name, BTF_KIND_STRUCT);
  Field f;
  return id >= 0 && find(id, path, &f);
}

uint32_t BtfTypes::struct_size(const char* struct_name) const {
  return (uint32_t)btf__resolve_size(btf_, struct_id(struct_name));
}

int64_t BtfTypes::enumerator(const char* name) const {
  uint32_t n = btf__type_cnt(btf_);
  for (uint32_t id = 1; id < n; id++) {
    const struct btf_type* t = btf__type_by_id(btf_, id);
    if (btf_is_enum(t)) {
      const struct btf_enum* e = btf_enum(t);
      for (uint16_t i = 0; i < btf_vlen(t); i++, e++)
        if (strcmp(btf__name_by_offset(btf_, e->name_off), name) == 0) return e->val;
    }
  }
  throw std::runtime_error(std::string("BTF: no enum has the value ") + name);
}

}  // namespace grass
