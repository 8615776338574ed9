// .stok reader/writer and native byte tokenizer (see tokens.h). Not a gpt2 tokenizer.
#include "tokens.h"

#include <cstring>
#include <stdexcept>

#include "files.h"
#include "json.h"

namespace strata::io {

namespace {
constexpr char kMagic[8] = {'S', 'T', 'O', 'K', 'E', 'N', 'S', '1'};

uint64_t read_u64_le(const std::string& s, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | static_cast<uint8_t>(s[at + static_cast<size_t>(i)]);
  return v;
}
}  // namespace

TokenData read_stok(const std::string& path) {
  std::string bytes = read_file(path);
  auto fail = [&](const std::string& what) { return std::runtime_error(path + ": " + what); };
  if (bytes.size() < 16 || std::memcmp(bytes.data(), kMagic, 8) != 0) throw fail("not a .stok file (bad magic)");
  uint64_t header_len = read_u64_le(bytes, 8);
  if (header_len > bytes.size() - 16) throw fail("truncated file: header length exceeds file size");
  json::Value h;
  try {
    h = json::parse(bytes.substr(16, header_len), path + " (stok header)");
  } catch (const json::ParseError& e) {
    throw std::runtime_error(e.what());
  }
  if (!h.is_object()) throw fail("header is not a JSON object");
  TokenData d;
  d.source = path;
  try {
    int64_t vocab = h.at("vocab").as_int64();
    if (vocab <= 0 || vocab > 0xFFFFFFFFll) throw fail("header field vocab out of range");
    d.vocab = static_cast<uint32_t>(vocab);
    int64_t n = h.at("n_tokens").as_int64();
    if (n < 0) throw fail("header field n_tokens is negative");
    const json::Value& sl = h.at("seq_len");
    d.seq_len = sl.is_null() ? 0 : sl.as_int64();
    if (d.seq_len < 0) throw fail("header field seq_len is negative");
    bool has_mask = h.at("has_mask").as_bool();
    const json::Value* bpt = h.find("bytes_per_token");
    d.bytes_per_token = (bpt && !bpt->is_null()) ? bpt->as_double() : 0.0;
    const json::Value* tok = h.find("tokenizer");
    d.tokenizer = tok ? tok->as_string() : "byte";
    if (d.tokenizer != "byte" && d.tokenizer != "gpt2") throw fail("header field tokenizer must be \"byte\" or \"gpt2\"");
    size_t need = 16 + header_len + static_cast<size_t>(n) * 4 + (has_mask ? static_cast<size_t>(n) : 0);
    if (bytes.size() < need) {
      throw fail("truncated file: " + std::to_string(bytes.size()) + " bytes, header promises " + std::to_string(need));
    }
    if (bytes.size() > need) throw fail("corrupt file: " + std::to_string(bytes.size() - need) + " trailing bytes");
    if (d.seq_len > 0 && n % d.seq_len != 0) {
      throw fail("n_tokens " + std::to_string(n) + " is not a multiple of seq_len " + std::to_string(d.seq_len));
    }
    d.tokens.resize(static_cast<size_t>(n));
    std::memcpy(d.tokens.data(), bytes.data() + 16 + header_len, static_cast<size_t>(n) * 4);
    for (size_t i = 0; i < d.tokens.size(); i++) {
      if (d.tokens[i] >= d.vocab) {
        throw fail("token " + std::to_string(i) + " has id " + std::to_string(d.tokens[i]) + " >= vocab " +
                   std::to_string(d.vocab));
      }
    }
    if (has_mask) {
      d.mask.assign(bytes.begin() + static_cast<std::ptrdiff_t>(16 + header_len + static_cast<size_t>(n) * 4),
                    bytes.begin() + static_cast<std::ptrdiff_t>(need));
    }
  } catch (const std::runtime_error& e) {
    std::string msg = e.what();
    if (msg.rfind(path, 0) == 0) throw;
    throw fail("header: " + msg);
  }
  return d;
}

void write_stok(const std::string& path, const TokenData& data) {
  json::Value h = json::Value::object();
  h.set("vocab", json::Value(static_cast<int64_t>(data.vocab)));
  h.set("n_tokens", json::Value(static_cast<int64_t>(data.tokens.size())));
  h.set("seq_len", data.seq_len > 0 ? json::Value(data.seq_len) : json::Value());
  h.set("has_mask", json::Value(data.has_mask()));
  h.set("bytes_per_token", data.bytes_per_token > 0 ? json::Value(data.bytes_per_token) : json::Value());
  h.set("tokenizer", data.tokenizer);
  std::string header = json::dump(h);
  std::string out(kMagic, 8);
  uint64_t len = header.size();
  for (int i = 0; i < 8; i++) out += static_cast<char>((len >> (8 * i)) & 0xFF);
  out += header;
  out.append(reinterpret_cast<const char*>(data.tokens.data()), data.tokens.size() * 4);
  if (data.has_mask()) {
    if (data.mask.size() != data.tokens.size()) throw std::runtime_error(path + ": mask length differs from token count");
    out.append(reinterpret_cast<const char*>(data.mask.data()), data.mask.size());
  }
  write_file_atomic(path, out);
}

std::vector<uint32_t> byte_encode(const std::string& text) {
  std::vector<uint32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); i++) ids[i] = static_cast<uint8_t>(text[i]);
  return ids;
}

std::string byte_decode(const std::vector<uint32_t>& ids) {
  std::string out;
  for (uint32_t id : ids) {
    if (id < 256) out += static_cast<char>(id);
    else if (id == kByteBos) out += "<bos>";
    else if (id == kByteEos) out += "<eos>";
    else if (id == kBytePad) out += "<pad>";
    else out += "<" + std::to_string(id) + ">";
  }
  return out;
}

TokenData read_text_bytes(const std::string& path) {
  TokenData d;
  d.source = path;
  d.vocab = kByteVocab;
  d.tokens = byte_encode(read_file(path));
  d.bytes_per_token = 1.0;
  d.tokenizer = "byte";
  if (d.tokens.empty()) throw std::runtime_error(path + ": empty text file");
  return d;
}

TokenData read_tokens(const std::string& path) {
  std::string ext = extension(path);
  if (ext == ".stok") return read_stok(path);
  if (ext == ".txt") return read_text_bytes(path);
  throw std::runtime_error(path + ": unsupported data file (expected .stok or .txt; the TypeScript runtime converts "
                           ".jsonl/.parquet to .stok)");
}

void split_heldout(const TokenData& all, double heldout_fraction, TokenData& train, TokenData& heldout) {
  size_t n = all.tokens.size();
  size_t unit = all.seq_len > 0 ? static_cast<size_t>(all.seq_len) : 1;
  size_t units = n / unit;
  size_t held_units = static_cast<size_t>(static_cast<double>(units) * heldout_fraction + 0.5);
  if (held_units == 0 && units > 1) held_units = 1;
  if (held_units >= units) throw std::runtime_error(all.source + ": too little data to hold out a fraction of it");
  size_t cut = (units - held_units) * unit;
  train = all;
  heldout = all;
  train.tokens.assign(all.tokens.begin(), all.tokens.begin() + static_cast<std::ptrdiff_t>(cut));
  heldout.tokens.assign(all.tokens.begin() + static_cast<std::ptrdiff_t>(cut), all.tokens.end());
  if (all.has_mask()) {
    train.mask.assign(all.mask.begin(), all.mask.begin() + static_cast<std::ptrdiff_t>(cut));
    heldout.mask.assign(all.mask.begin() + static_cast<std::ptrdiff_t>(cut), all.mask.end());
  }
}

}  // namespace strata::io
