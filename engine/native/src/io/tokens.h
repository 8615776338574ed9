// Token data for training and evaluation: the `.stok` binary format written by the TypeScript
// runtime (and by tests), and plain `.txt` files tokenized natively with the byte tokenizer so the
// native CLI works on machines without Node.
//
// .stok layout: 8-byte magic "STOKENS1", uint64 LE header length, JSON header
// {"vocab":V,"n_tokens":N,"seq_len":S|null,"has_mask":bool,"bytes_per_token":float|null,
//  "tokenizer":"byte"|"gpt2"}, uint32 LE tokens[N], then uint8 mask[N] when has_mask
// (mask = 1 where the loss counts). It is not a tokenizer for gpt2 (engine/runtime owns that).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace strata::io {

/** Byte tokenizer ids: 0..255 are bytes, then these specials. */
constexpr uint32_t kByteBos = 256;
constexpr uint32_t kByteEos = 257;
constexpr uint32_t kBytePad = 258;
constexpr uint32_t kByteVocab = 259;

struct TokenData {
  uint32_t vocab = 0;
  std::vector<uint32_t> tokens;
  std::vector<uint8_t> mask;      // empty when the file has no mask
  int64_t seq_len = 0;            // 0: a continuous stream; >0: fixed-length samples
  double bytes_per_token = 0;     // 0 when unknown
  std::string tokenizer = "byte";
  std::string source;             // path it came from, for messages

  bool has_mask() const { return !mask.empty(); }
};

/** Reads and validates a .stok file (magic, header, sizes, token ids < vocab). */
TokenData read_stok(const std::string& path);
/** Writes a .stok file atomically. */
void write_stok(const std::string& path, const TokenData& data);
/** Reads a UTF-8/any text file as bytes: ids 0..255, bytes_per_token 1, no mask. */
TokenData read_text_bytes(const std::string& path);
/** Dispatches on extension: .stok or .txt (anything else is an error naming the file). */
TokenData read_tokens(const std::string& path);

/** Byte tokenizer: text -> ids (no specials added), ids -> text (specials rendered as <bos> etc.). */
std::vector<uint32_t> byte_encode(const std::string& text);
std::string byte_decode(const std::vector<uint32_t>& ids);

/**
 * Splits a stream into train and held-out parts: the last `heldout_fraction` of the tokens
 * (rounded to whole samples when seq_len is set) is held out.
 */
void split_heldout(const TokenData& all, double heldout_fraction, TokenData& train, TokenData& heldout);

}  // namespace strata::io
