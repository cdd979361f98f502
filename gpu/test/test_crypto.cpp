// SHA-256 / HMAC-SHA256 / CRC32C of the monitor code against published vectors and against
// OpenSSL and CRC32C's bitwise definition (check.h) on random inputs.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "crypto/crc32.h"
#include "crypto/sha256.h"
#include "check.h"

static std::string to_hex(const uint8_t* p, size_t n) {
  std::string s;
  char b[3];
  for (size_t i = 0; i < n; i++) { snprintf(b, sizeof b, "%02x", p[i]); s += b; }
  return s;
}

static std::vector<uint8_t> from_hex(const char* h) {
  std::vector<uint8_t> v;
  for (size_t i = 0; h[i] && h[i + 1]; i += 2) v.push_back((uint8_t)strtoul(std::string(h + i, 2).c_str(), nullptr, 16));
  return v;
}

static std::string sha256_hex(const std::string& msg) {
  grass_sha256 s;
  grass_sha256_init(&s);
  grass_sha256_update(&s, msg.data(), msg.size());
  uint8_t out[32];
  grass_sha256_final(&s, out);
  return to_hex(out, 32);
}

static std::string hmac_hex(const std::vector<uint8_t>& key, const std::vector<uint8_t>& msg, size_t split) {
  grass_hmac m;
  grass_hmac_init(&m, key.data(), (uint32_t)key.size());
  grass_hmac_update(&m, msg.data(), split);
  grass_hmac_update(&m, msg.data() + split, msg.size() - split);
  uint8_t out[32];
  grass_hmac_final(&m, out);
  return to_hex(out, 32);
}

int main() {
  // FIPS 180-2 examples.
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

  // RFC 4231 test cases 1, 2, 6 (key longer than a block), 7.
  CHECK(hmac_hex(from_hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"), from_hex("4869205468657265"), 3) ==
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  {
    std::string k = "Jefe", d = "what do ya want for nothing?";
    CHECK(hmac_hex(std::vector<uint8_t>(k.begin(), k.end()), std::vector<uint8_t>(d.begin(), d.end()), 10) ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  }
  {
    std::string d = "Test Using Larger Than Block-Size Key - Hash Key First";
    CHECK(hmac_hex(std::vector<uint8_t>(131, 0xaa), std::vector<uint8_t>(d.begin(), d.end()), 0) ==
          "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  }

  // Against OpenSSL: every length around the block boundaries, split anywhere.
  std::mt19937_64 rng(42);
  int mismatches = 0;
  for (size_t len = 0; len < 300; len++) {
    std::vector<uint8_t> key(32), msg(len);
    for (auto& b : key) b = (uint8_t)rng();
    for (auto& b : msg) b = (uint8_t)rng();
    uint8_t ref[32];
    unsigned ref_len = 0;
    HMAC(EVP_sha256(), key.data(), 32, msg.data(), msg.size(), ref, &ref_len);
    if (hmac_hex(key, msg, len ? rng() % (len + 1) : 0) != to_hex(ref, 32)) mismatches++;
  }
  CHECK(mismatches == 0);

  uint8_t a[32] = {1, 2, 3}, b[32] = {1, 2, 3};
  CHECK(grass_mac_equal(a, b, 32));
  b[31] ^= 1;
  CHECK(!grass_mac_equal(a, b, 32));

  // CRC32C against its definition, at every alignment and tail length: the host's instruction
  // path (three streams from 3 KiB on) and the table path the device runs.
  static grass_crc32_tables crc;
  grass_crc32_tables_init(&crc);
  CHECK(crc.hardware == grass_crc32_cpu_has_instruction());
  std::vector<uint8_t> buf(300000);
  for (auto& x : buf) x = (uint8_t)rng();
  int crc_mismatches = 0;
  for (size_t start = 0; start < 9; start++)
    for (size_t len : {0u, 1u, 7u, 8u, 9u, 63u, 64u, 100u, 3071u, 3072u, 3073u, 3079u, 4096u, 99999u, 262144u}) {
      uint32_t want = reference_crc32c(buf.data() + start, len);
      if (grass_crc32(&crc, buf.data() + start, len) != want || grass_crc32_serial(&crc, buf.data() + start, len) != want) crc_mismatches++;
    }
  CHECK(crc_mismatches == 0);
  CHECK(grass_crc32(&crc, "123456789", 9) == 0xe3069283u);  // the CRC-32/ISCSI check value
  CHECK(grass_crc32_serial(&crc, "123456789", 9) == 0xe3069283u);

  // The pieces' CRCs joined as the device's helpers join them (each shifted past the bytes after
  // it, XORed) give the CRC of the whole, for piece counts and lengths as the helpers split.
  int join_mismatches = 0;
  for (uint64_t n : {4096ull, 4100ull, 4999ull})
    for (uint64_t pieces : {1ull, 3ull, 192ull, 400ull}) {
      uint64_t piece = ((n + pieces - 1) / pieces + 15) & ~15ull;
      uint32_t joined = 0;
      for (uint64_t start = 0; start < n; start += piece) {
        uint64_t len = n - start < piece ? n - start : piece;
        joined ^= grass_crc32_shift(&crc, grass_crc32_serial(&crc, buf.data() + start, len), n - start - len);
      }
      if (joined != reference_crc32c(buf.data(), n)) join_mismatches++;
    }
  CHECK(join_mismatches == 0);
  CHECK(grass_crc32_combine(&crc, reference_crc32c(buf.data(), 1000), reference_crc32c(buf.data() + 1000, 3000), 3000) ==
        reference_crc32c(buf.data(), 4000));
  return check_report("test_crypto");
}
