// The target's types through libbpf: the loader names structs and fields (with alternatives for
// renamed ones) and gets offsets and sizes, as BPF CO-RE relocations do.
#ifndef GRASS_DISCOVERY_BTF_TYPES_H
#define GRASS_DISCOVERY_BTF_TYPES_H

#include <stdint.h>
#include <initializer_list>
#include <string>
#include <vector>

struct btf;

namespace grass {

struct Field {
  std::string name;   // the alternative that matched
  uint32_t offset;    // bytes from the start of the outer struct
  uint32_t size;      // bytes
  int32_t type_id;    // resolved (typedefs and qualifiers skipped)
};

class BtfTypes {
 public:
  explicit BtfTypes(const std::vector<uint8_t>& raw);  // throws if libbpf cannot parse it
  ~BtfTypes();
  BtfTypes(const BtfTypes&) = delete;

  // A field of struct_name by a dotted path ("thread_info.cpu"), looking through anonymous
  // structs and unions; the first alternative that exists wins. Throws naming them all.
  Field field(const char* struct_name, std::initializer_list<const char*> alternatives) const;
  bool has_field(const char* struct_name, const char* path) const;
  uint32_t struct_size(const char* struct_name) const;
  int64_t enumerator(const char* name) const;  // throws if no enum has it
  const struct btf* raw() const { return btf_; }

 private:
  int32_t struct_id(const char* name) const;
  bool find(int32_t struct_id, const std::string& path, Field* out) const;
  struct btf* btf_;
};

}  // namespace grass

#endif
