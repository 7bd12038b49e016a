// `thinwire compress | decompress | inspect | codecs`: one message in, one vector out, and back.
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/error_feedback.hpp"
#include "thinwire/codec/message.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/core/array_file.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::cli {
namespace {

using codec::Codec;
using codec::CodecChoice;

struct CompressOptions {
  std::string codec;
  std::string in;
  std::string out;
  std::string seed = "0";  // parsed by parse_unsigned: CLI11 would wrap -1 and 2^64
  std::string rank = "0";
  std::string iteration = "0";
};

// Upper bound on a message file: the largest vector a message holds (2^32 elements of a lossless
// codec) plus its header and parameters. A bigger file is not a message; /dev/zero is never read
// to the end.
constexpr std::uint64_t kMaxMessageBytes = (std::uint64_t{4} << 32) + (std::uint64_t{1} << 20);

// Reads a message file, bounded by what its header declares: the header first, then exactly the
// declared length plus one byte (so that a longer file is still reported as a length mismatch).
std::vector<std::byte> read_message_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw IoError(path + ": is a directory, not a message file");
  }
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw IoError(path + ": cannot open for reading: " + std::strerror(errno));
  std::vector<std::byte> bytes(codec::kHeaderBytes);
  bytes.resize(std::fread(bytes.data(), 1, bytes.size(), f.get()));
  if (bytes.size() < codec::kHeaderBytes || bytes[0] != std::byte{'T'}) return bytes;
  std::uint64_t params = 0;
  std::uint64_t payload = 0;
  for (int i = 0; i < 2; ++i) params |= std::to_integer<std::uint64_t>(bytes[6 + i]) << (8 * i);
  for (int i = 0; i < 8; ++i) payload |= std::to_integer<std::uint64_t>(bytes[16 + i]) << (8 * i);
  if (payload > kMaxMessageBytes) {
    throw CorruptMessage(path + ": the header declares a payload of " + std::to_string(payload) +
                         " bytes, more than a message holds (at most 2^34)");
  }
  const std::uint64_t want = params + payload + 1;  // one more: a longer file is an error
  constexpr std::size_t kChunk = std::size_t{1} << 20;
  for (std::uint64_t got = 0; got < want;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, want - got));
    const std::size_t old = bytes.size();
    bytes.resize(old + n);
    const std::size_t read = std::fread(bytes.data() + old, 1, n, f.get());
    bytes.resize(old + read);
    got += read;
    if (read < n) break;
  }
  if (std::ferror(f.get()) != 0) throw IoError(path + ": read failed: " + std::strerror(errno));
  return bytes;
}

struct DecompressOptions {
  std::string in;
  std::string out;
};

// Rethrows a CorruptMessage with the file it came from in front.
template <typename Fn>
auto with_file(const std::string& path, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const CorruptMessage& e) {
    throw CorruptMessage(path + ": " + e.what());
  }
}

// The element count of a message, checked before it sizes an output buffer: the codec's least
// payload for that many elements must fit the payload, and the output must fit in memory.
std::uint64_t checked_elements(const std::string& path, std::span<const std::byte> message) {
  const codec::MessageView view = with_file(path, [&] { return codec::parse_message(message); });
  const std::unique_ptr<Codec> codec = with_file(path, [&] { return codec::codec_of(message); });
  const std::uint64_t elements = view.header.elements;
  const std::uint64_t least = codec->min_payload_bytes(elements);
  if (view.payload.size() < least) {
    throw CorruptMessage(path + ": the header claims " + std::to_string(elements) +
                         " elements, but the payload of " + std::to_string(view.payload.size()) +
                         " bytes holds fewer (" + codec->spec() + " needs at least " +
                         std::to_string(least) + ")");
  }
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGE_SIZE);
  const double memory =
      pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0.0;
  // Half the machine: the decoded floats must fit beside everything else (a sparse codec's
  // payload cannot bound its element count, so this is the bound for those).
  if (memory > 0 && 4.0 * static_cast<double>(elements) > memory / 2) {
    throw IoError(path + ": the message claims " + std::to_string(elements) +
                  " elements, more float32 values than fit in half of this machine's memory");
  }
  return elements;
}

void run_compress(const CompressOptions& opt) {
  CodecChoice choice = as_usage("--codec", [&] { return codec::parse_codec(opt.codec); });
  (void)as_usage("--in", [&] { return array_format_for(opt.in); });
  const std::vector<float> v = read_array(opt.in);
  const codec::EncodeContext ctx{
      .seed = parse_unsigned(opt.seed, "--seed", 0, UINT64_MAX, "[0, 2^64-1]"),
      .rank = static_cast<std::uint32_t>(
          parse_unsigned(opt.rank, "--rank", 0, UINT32_MAX, "[0, 2^32-1]")),
      .iteration = parse_unsigned(opt.iteration, "--iteration", 0, UINT64_MAX, "[0, 2^64-1]")};
  std::vector<std::byte> message;
  try {
    // '+ef' on one message: error feedback starts from a zero residual, so the payload equals
    // the plain codec's and the header carries the error-feedback flag.
    message = choice.error_feedback ? codec::make_error_feedback(choice, v.size())->encode(v, ctx)
                                    : choice.codec->encode(v, ctx);
  } catch (const InvalidArgument& e) {
    // The spec was valid, so this is about the data (e.g. a NaN in the input): a runtime error.
    throw IoError(opt.in + ": " + e.what());
  }
  write_file_bytes(opt.out, message);
}

void run_decompress(const DecompressOptions& opt) {
  (void)as_usage("--out", [&] { return array_format_for(opt.out); });
  const std::vector<std::byte> message = read_message_file(opt.in);
  // Lengths, checksum and the payload's size for the element count are validated before the
  // element count sizes a buffer.
  std::vector<float> out(checked_elements(opt.in, message));
  with_file(opt.in, [&] { codec::decode(message, out, codec::DecodeMode::kOverwrite); });
  write_array(opt.out, out);
}

// A spec parameter as JSON: integers and reals as numbers, true/false as booleans, the rest as
// strings, so that scripts can compare `parameters.s == 16` without parsing.
nlohmann::json parameter_value(const std::string& text) {
  if (text == "true") return true;
  if (text == "false") return false;
  try {
    return parse_int(text, "");
  } catch (const InvalidArgument&) {
  }
  try {
    return parse_double(text, "");
  } catch (const InvalidArgument&) {
  }
  return text;
}

void run_inspect(const std::string& path) {
  const std::vector<std::byte> message = read_message_file(path);
  const codec::MessageInfo info = with_file(path, [&] { return codec::inspect(message); });
  const codec::MessageView view = codec::parse_message(message);
  nlohmann::json params = nlohmann::json::object();
  const Spec spec = Spec::parse(info.spec);
  for (const auto& [key, value] : spec.params()) {
    params[key] = parameter_value(value);
  }
  const nlohmann::json j = {
      {"file", path},
      {"codec", info.codec},
      {"spec", info.spec},
      {"parameters", params},
      {"elements", info.elements},
      {"bytes", info.bytes},
      {"header_bytes", codec::kHeaderBytes},
      {"params_bytes", view.header.params_bytes},
      {"payload_bytes", info.payload_bytes},
      {"bits_per_element", info.bits_per_element()},
      {"error_feedback", info.error_feedback},
      {"format_version", view.header.version},
  };
  std::cout << j.dump(2) << '\n';
}

void run_codecs() {
  std::map<std::string, std::vector<std::string>, std::less<>> examples;
  for (const std::string& spec : codec::example_codec_specs()) {
    const std::string name = spec.substr(0, spec.find_first_of(":+"));
    examples[name].push_back(spec);
  }
  std::size_t width = 0;
  for (const codec::CodecEntry& entry : codec::codec_registry()) {
    width = std::max(width, entry.name.size());
  }
  std::cout
      << "Spec syntax: NAME[:KEY=VALUE,...][+ef]   ('+ef' adds error feedback)\n"
         "Every parameter has a default; 'inspect' shows the canonical spec of a message.\n\n";
  for (const codec::CodecEntry& entry : codec::codec_registry()) {
    std::cout << "  " << entry.name << std::string(width + 2 - entry.name.size(), ' ')
              << entry.summary << '\n';
    const auto it = examples.find(entry.name);
    if (it == examples.end()) continue;
    // Examples after "e.g.", wrapped at kColumns.
    constexpr std::size_t kColumns = 100;
    const std::string indent(width + 4, ' ');
    std::string line = indent + "e.g.";
    for (const std::string& spec : it->second) {
      if (line.size() + 2 + spec.size() > kColumns && line.size() > indent.size() + 4) {
        std::cout << line << '\n';
        line = indent + "    ";
      }
      line += "  " + spec;
    }
    std::cout << line << '\n';
  }
}

}  // namespace

void add_codec_commands(CLI::App& app) {
  auto compress_opt = std::make_shared<CompressOptions>();
  CLI::App* compress =
      app.add_subcommand("compress", "Encode a float32 vector file into a message with one codec");
  compress->add_option("--codec", compress_opt->codec, "Codec spec, e.g. qsgd:s=16,bucket=512")
      ->required();
  compress->add_option("--in", compress_opt->in, "Input vector file, .npy or .f32")->required();
  compress->add_option("--out", compress_opt->out, "Output message file (conventionally .twm)")
      ->required();
  compress->add_option("--seed", compress_opt->seed, "Seed of the codec's random numbers")
      ->type_name("UINT")
      ->capture_default_str();
  compress->add_option("--rank", compress_opt->rank, "Worker rank mixed into the random stream")
      ->type_name("UINT")
      ->capture_default_str();
  compress
      ->add_option("--iteration", compress_opt->iteration, "Iteration mixed into the random stream")
      ->type_name("UINT")
      ->capture_default_str();
  compress->footer(
      "The message is self-describing (codec, parameters, length, checksum): decompress and\n"
      "inspect need no codec flag. Stochastic codecs draw their random numbers from (seed, rank,\n"
      "iteration), so the same three values always give the same bytes.\n\n"
      "Input: .npy is a 1-D float32 NumPy array (dtype '<f4', shape (n,)); .f32 is raw\n"
      "little-endian float32. Every value must be finite.\n\n"
      "Codec specs are NAME[:KEY=VALUE,...][+ef], e.g. identity, qsgd:s=16,bucket=512,\n"
      "topk:k=0.01+ef. Run 'thinwire codecs' for every codec with examples. '+ef' marks the\n"
      "message as sent with error feedback; one message starts from a zero residual, so its\n"
      "payload is the plain codec's (the residual matters across iterations, in training).");
  compress->callback([compress_opt] { run_compress(*compress_opt); });

  auto decompress_opt = std::make_shared<DecompressOptions>();
  CLI::App* decompress =
      app.add_subcommand("decompress", "Decode a message into a float32 vector file");
  decompress->add_option("--in", decompress_opt->in, "Message file written by compress")
      ->required();
  decompress->add_option("--out", decompress_opt->out, "Output vector file, .npy or .f32")
      ->required();
  decompress->footer(
      "The header, every length and the checksum are verified before anything is decoded: a\n"
      "damaged message is an error (exit code 1), never garbage output.\n"
      "Output: .npy writes a 1-D float32 NumPy array, .f32 raw little-endian float32.");
  decompress->callback([decompress_opt] { run_decompress(*decompress_opt); });

  auto inspect_path = std::make_shared<std::string>();
  CLI::App* inspect = app.add_subcommand("inspect", "Print a message's header and sizes as JSON");
  inspect->add_option("message", *inspect_path, "Message file (.twm)")->required();
  inspect->footer(
      "Fields: file, codec, spec (canonical, every parameter spelled out), parameters (an\n"
      "object), elements, bytes (whole message), header_bytes, params_bytes, payload_bytes,\n"
      "bits_per_element (8 * bytes / elements, header included), error_feedback (whether the\n"
      "sender used error feedback) and format_version. The checksum is verified.");
  inspect->callback([inspect_path] { run_inspect(*inspect_path); });

  CLI::App* codecs =
      app.add_subcommand("codecs", "List every codec with a summary and example specs");
  codecs->footer("Spec syntax: NAME[:KEY=VALUE,...][+ef]; see docs/wire_format.md for the bytes.");
  codecs->callback([] { run_codecs(); });
}

}  // namespace thinwire::cli
