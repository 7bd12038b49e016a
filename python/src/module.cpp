// thinwire._thinwire: the Python extension behind the `thinwire` package.
//
// Codecs are built from the same spec strings as the CLI ("qsgd:s=7,bucket=512,norm=max,
// coding=packed", "topk:k=100+ef"). Inputs are read in place through the buffer protocol (NumPy
// arrays, bytes, bytearray, memoryview) or, for torch tensors (which do not export buffers),
// through tensor.detach().numpy(), which shares memory for CPU tensors. Nothing is converted
// silently: a float input must be C-contiguous float32, a message must be contiguous bytes, else
// TypeError/ValueError says what was given. encode() writes straight into a new bytes object
// (allocated at max_encoded_bytes and shrunk in place), encode_into() into a caller's uint8
// buffer; decode() writes into `out` when given.
//
// Tuners (tune/tuner.hpp) are bound as thinwire.Tuner: built from the CLI's --tuner/--cost
// strings, decide(t, v, residual=ef) picks the codec for one message from e + v (the vector error
// feedback is about to encode, as in train/sender.cpp), and ErrorFeedback.encode(v, codec=...)
// encodes that one message with the chosen codec, the residual carrying over between levels.
//
// C++ exceptions become thinwire.Error subclasses carrying the C++ message; InvalidArgument and
// CorruptMessage also derive from ValueError, IoError from OSError, Timeout from TimeoutError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <regex>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/error_feedback.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/collective/allreduce.hpp"
#include "thinwire/comm/threads.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/tune/cost_model.hpp"
#include "thinwire/tune/online_link.hpp"
#include "thinwire/tune/tuner.hpp"

#ifndef THINWIRE_VERSION
#error "THINWIRE_VERSION is defined by python/CMakeLists.txt from the project version"
#endif

namespace py = pybind11;

namespace thinwire::python {
namespace {

// A Python object seen as a buffer: torch tensors go through .detach().numpy() (a view for CPU
// tensors; torch raises for CUDA tensors, and the caller moves them first).
py::buffer as_buffer(const py::handle& obj, const char* what) {
  if (PyObject_CheckBuffer(obj.ptr()) != 0) return py::reinterpret_borrow<py::buffer>(obj);
  if (py::hasattr(obj, "detach") && py::hasattr(obj, "numpy")) {
    py::object array = obj.attr("detach")().attr("numpy")();
    return py::reinterpret_borrow<py::buffer>(array);
  }
  throw py::type_error(std::string(what) +
                       ": expected a NumPy array, torch tensor or bytes-like "
                       "object, got " +
                       std::string(py::str(py::type::of(obj))));
}

bool is_c_contiguous(const py::buffer_info& info) {
  py::ssize_t expected = info.itemsize;
  for (py::ssize_t k = info.ndim; k-- > 0;) {
    if (info.shape[static_cast<std::size_t>(k)] > 1 &&
        info.strides[static_cast<std::size_t>(k)] != expected) {
      return false;
    }
    expected *= info.shape[static_cast<std::size_t>(k)];
  }
  return true;
}

// Holds the buffer view (and so the exporter) alive while the span is used.
struct FloatView {
  py::buffer_info info;
  [[nodiscard]] std::span<float> span() const {
    return {static_cast<float*>(info.ptr), static_cast<std::size_t>(info.size)};
  }
};

FloatView float_view(const py::handle& obj, const char* what, bool writable) {
  py::buffer buf = as_buffer(obj, what);
  py::buffer_info info = buf.request(writable);
  if (info.itemsize != 4 || (info.format != "f" && info.format != "<f" && info.format != "=f")) {
    throw py::type_error(std::string(what) + ": expected float32 elements, got format '" +
                         info.format + "' (convert with .astype(numpy.float32) / .float())");
  }
  if (!is_c_contiguous(info)) {
    throw py::value_error(std::string(what) +
                          ": expected a C-contiguous array (thinwire does not copy; use "
                          "numpy.ascontiguousarray / .contiguous())");
  }
  return FloatView{std::move(info)};
}

struct ByteView {
  py::buffer_info info;
  [[nodiscard]] std::span<std::byte> span() const {
    return {static_cast<std::byte*>(info.ptr), static_cast<std::size_t>(info.size * info.itemsize)};
  }
};

ByteView byte_view(const py::handle& obj, const char* what, bool writable) {
  py::buffer buf = as_buffer(obj, what);
  py::buffer_info info = buf.request(writable);
  if (!is_c_contiguous(info)) {
    throw py::value_error(std::string(what) + ": expected a contiguous byte buffer");
  }
  return ByteView{std::move(info)};
}

// Encodes with `encode(out_span) -> size` into a new bytes object of exactly the message size:
// allocated at the bound and shrunk in place, so the message is written once.
template <typename EncodeFn>
py::bytes encode_to_bytes(std::size_t bound, EncodeFn&& encode) {
  PyObject* raw = PyBytes_FromStringAndSize(nullptr, static_cast<py::ssize_t>(bound));
  if (raw == nullptr) throw py::error_already_set();
  std::size_t size = 0;
  try {
    std::span<std::byte> out(reinterpret_cast<std::byte*>(PyBytes_AS_STRING(raw)), bound);
    py::gil_scoped_release release;
    size = encode(out);
  } catch (...) {
    Py_DECREF(raw);
    throw;
  }
  if (_PyBytes_Resize(&raw, static_cast<py::ssize_t>(size)) != 0) throw py::error_already_set();
  return py::reinterpret_steal<py::bytes>(raw);
}

std::size_t encode_into_buffer(std::size_t bound, const py::handle& out_obj, const auto& encode) {
  ByteView out = byte_view(out_obj, "encode_into: out", /*writable=*/true);
  if (out.span().size() < bound) {
    throw InvalidArgument("encode_into: out has " + std::to_string(out.span().size()) +
                          " bytes, the codec may need up to " + std::to_string(bound));
  }
  py::gil_scoped_release release;
  return encode(out.span());
}

codec::EncodeContext make_context(std::uint64_t seed, std::uint32_t rank, std::uint64_t iteration) {
  return codec::EncodeContext{.seed = seed, .rank = rank, .iteration = iteration};
}

py::object decode_message(const py::handle& message, py::object out, bool accumulate) {
  ByteView msg = byte_view(message, "decode: message", /*writable=*/false);
  const codec::MessageInfo info = codec::inspect(msg.span());
  if (out.is_none()) {
    if (accumulate) throw InvalidArgument("decode: accumulate=True needs an out array");
    py::array_t<float> array(static_cast<py::ssize_t>(info.elements));
    FloatView view = float_view(array, "decode: out", /*writable=*/true);
    {
      py::gil_scoped_release release;
      codec::decode(msg.span(), view.span(), codec::DecodeMode::kOverwrite);
    }
    return array;
  }
  FloatView view = float_view(out, "decode: out", /*writable=*/true);
  {
    py::gil_scoped_release release;
    codec::decode(msg.span(), view.span(),
                  accumulate ? codec::DecodeMode::kAccumulate : codec::DecodeMode::kOverwrite);
  }
  return out;
}

py::dict inspect_message(const py::handle& message) {
  ByteView msg = byte_view(message, "inspect: message", /*writable=*/false);
  const codec::MessageInfo info = codec::inspect(msg.span());
  py::dict d;
  d["codec"] = info.codec;
  d["spec"] = info.spec;
  d["elements"] = info.elements;
  d["bytes"] = info.bytes;
  d["payload_bytes"] = info.payload_bytes;
  d["error_feedback"] = info.error_feedback;
  d["bits_per_element"] = info.bits_per_element();
  return d;
}

// Python wrapper around a shared, immutable codec.
struct PyCodec {
  std::shared_ptr<const codec::Codec> codec;
};

PyCodec codec_from_spec(const std::string& spec) {
  return PyCodec{std::shared_ptr<const codec::Codec>(codec::make_codec(spec))};
}

// A codec argument: a spec string or a thinwire.Codec.
std::shared_ptr<const codec::Codec> codec_of(const py::object& c) {
  if (py::isinstance<py::str>(c)) return codec::make_codec(c.cast<std::string>());
  return c.cast<const PyCodec&>().codec;
}

// The codec of one ErrorFeedback message: the residual's own, or a tuner's choice.
const codec::Codec& codec_or_own(const codec::ErrorFeedback& ef, const py::object& c) {
  if (c.is_none()) return ef.codec();
  if (!py::isinstance<PyCodec>(c)) {
    throw py::type_error("ErrorFeedback.encode: codec must be a thinwire.Codec, got " +
                         std::string(py::str(py::type::of(c))));
  }
  return *c.cast<const PyCodec&>().codec;
}

// A tuner with a scratch buffer for e + v (so decide() allocates once per bucket size).
struct PyTuner {
  std::unique_ptr<tune::Tuner> tuner;
  // cost='auto': the estimator the tuner prices with, fed by observe_message/observe_compute.
  std::shared_ptr<tune::AutoCost> link;
  std::string spec;
  std::string codec_spec;
  std::string cost_spec;
  bool lr_coupling = false;
  std::vector<float> scratch;
};

// The library's tuner messages name the CLI's flags (`--tuner: unknown tuner 'x'`, "it needs
// --tuner dynamic"), which mean nothing to a Python caller. Every thinwire message that reaches
// Python goes through python_names(): a flag followed by a value becomes the keyword argument
// with that value (tuner='dynamic'), a bare flag the argument's name.
std::string python_names(std::string message) {
  static const std::pair<std::regex, std::string> kRules[] = {
      {std::regex(R"(--lr-coupling(?![\w-]))"), "lr_coupling=True"},
      {std::regex(R"(--lr(?![\w-]))"), "the optimizer's lr"},
      {std::regex(R"(--(tuner|codec|cost) ([A-Za-z_]\w*)(?![\w:=]))"), "$1='$2'"},
      {std::regex(R"(--(tuner|codec|cost)(?![\w-]))"), "$1"},
  };
  if (message.find("--") == std::string::npos) return message;
  for (const auto& [pattern, replacement] : kRules) {
    message = std::regex_replace(message, pattern, replacement);
  }
  return message;
}

// A message about one argument of a call starts with "--flag:" (or "--flag schedule:"): name the
// argument and the value the caller passed instead, e.g. "tuner='dyn': unknown tuner 'dyn'".
std::string with_argument(std::string message, std::string_view flag, const std::string& arg,
                          const std::string& value) {
  const std::string lead = "--" + std::string(flag);
  if (message.rfind(lead, 0) != 0) return message;
  const std::size_t colon = message.find(':', lead.size());
  if (colon == std::string::npos || message.find(' ', lead.size() + 1) < colon - 1) return message;
  return arg + "='" + value + "'" + message.substr(colon);
}

PyTuner make_py_tuner(const std::string& spec, const std::string& codec_spec,
                      const std::string& cost, bool lr_coupling) {
  // make_tuner checks --cost only for `dynamic`; check it for every tuner so that a typo in
  // cost= never passes silently.
  std::string cost_spec;
  try {
    cost_spec = tune::make_cost_model(cost)->spec();
  } catch (const InvalidArgument& e) {
    std::string_view message = e.what();
    if (message.starts_with("cost: ")) message.remove_prefix(6);
    throw InvalidArgument("cost='" + cost + "': " + std::string(message));
  }
  PyTuner t;
  // cost='auto' learns the link from what the caller observes (the DDP hook: its own exchanges),
  // as thinwire train's LinkTimer feeds it; the tuner prices with that one estimator.
  if (cost_spec.starts_with("auto")) {
    t.link = std::shared_ptr<tune::AutoCost>(
        dynamic_cast<tune::AutoCost*>(tune::make_cost_model(cost_spec).release()));
  }
  try {
    t.tuner = tune::make_tuner({.tuner = spec,
                                .codec = codec_spec,
                                .cost = cost,
                                .lr_coupling = lr_coupling,
                                .cost_model = t.link});
  } catch (const InvalidArgument& e) {
    std::string message = with_argument(e.what(), "tuner", "tuner", spec);
    message = with_argument(std::move(message), "codec", "codec", codec_spec);
    throw InvalidArgument(std::move(message));
  }
  t.spec = spec;
  t.codec_spec = codec_spec;
  t.cost_spec = cost_spec;
  t.lr_coupling = lr_coupling;
  return t;
}

// The estimator of a cost='auto' tuner; InvalidArgument naming `method` for any other cost.
tune::OnlineLink& auto_link(const PyTuner& t, const char* method) {
  if (t.link == nullptr) {
    throw InvalidArgument(std::string("Tuner.") + method +
                          ": needs cost='auto', this tuner has cost='" + t.cost_spec + "'");
  }
  return t.link->link();
}

void observe_message(PyTuner& t, double bits, double seconds) {
  tune::OnlineLink& link = auto_link(t, "observe_message");
  link.observe_message(bits, seconds);
  link.refit();
}

void observe_compute(PyTuner& t, double seconds) {
  tune::OnlineLink& link = auto_link(t, "observe_compute");
  link.observe_compute(seconds);
  link.refit();
}

py::object link_estimate(const PyTuner& t) {
  if (t.link == nullptr) return py::none();
  const tune::OnlineLink& link = t.link->link();
  py::dict d;
  d["latency_s"] = link.latency_s();
  d["bandwidth_bps"] = link.bandwidth_bits_per_s();
  d["bandwidth_fitted"] = link.bandwidth_fitted();
  d["compute_s"] = link.compute_s();
  d["samples"] = link.samples();
  return d;
}

// The decision for iteration t on v, or on e + v when `residual` (an ErrorFeedback) is given:
// the sum is taken element by element in float, exactly as ErrorFeedback forms it. The message
// is priced copies·C(bits) + fixed (tune::TuneContext); fixed None is 0, or under cost='auto'
// the estimated compute time of an iteration.
tune::Decision decide(PyTuner& t, std::uint64_t iteration, const py::handle& v,
                      const py::object& residual, double copies, const py::object& fixed) {
  FloatView in = float_view(v, "Tuner.decide: v", /*writable=*/false);
  const std::span<const float> g = in.span();
  tune::TuneContext context;
  if (!(copies > 0.0) || !std::isfinite(copies)) {
    throw InvalidArgument("Tuner.decide: copies must be a positive number, got " +
                          std::to_string(copies));
  }
  context.copies = copies;
  if (!fixed.is_none()) {
    context.fixed = fixed.cast<double>();
    if (!(context.fixed >= 0.0) || !std::isfinite(context.fixed)) {
      throw InvalidArgument("Tuner.decide: fixed must be a number >= 0, got " +
                            std::to_string(context.fixed));
    }
  } else if (t.link != nullptr) {
    context.fixed = t.link->compute_seconds();
  }
  if (residual.is_none()) {
    py::gil_scoped_release release;
    return t.tuner->decide(iteration, g, context);
  }
  if (!py::isinstance<codec::ErrorFeedback>(residual)) {
    throw py::type_error("Tuner.decide: residual must be a thinwire.ErrorFeedback, got " +
                         std::string(py::str(py::type::of(residual))));
  }
  const auto& ef = residual.cast<const codec::ErrorFeedback&>();
  if (ef.dimension() != g.size()) {
    throw InvalidArgument("Tuner.decide: v has " + std::to_string(g.size()) +
                          " elements, the residual " + std::to_string(ef.dimension()));
  }
  py::gil_scoped_release release;
  const std::span<const float> e = ef.residual();
  t.scratch.resize(g.size());
  for (std::size_t i = 0; i < g.size(); ++i) t.scratch[i] = e[i] + g[i];
  return t.tuner->decide(iteration, t.scratch, context);
}

py::dict decision_dict(const tune::Decision& d) {
  py::dict out;
  out["codec"] = d.codec_spec;
  out["level"] = d.level;
  out["levels"] = d.levels;
  out["rho"] = d.rho;
  out["bits"] = d.bits;
  out["lr_scale"] = d.lr_scale;
  return out;
}

// The C++ collective::allreduce over `inputs.size()` threads (the threads transport): the
// reference that the Python DDP hook's ring over torch.distributed is tested against. residuals:
// None or one AllreduceResidual per rank, built for this call (updated in place). Returns every
// rank's result.
py::list allreduce_threads(const py::sequence& inputs, const PyCodec& c,
                           const std::string& algorithm, std::uint64_t seed,
                           std::uint64_t iteration, const py::object& residuals) {
  const auto m = static_cast<int>(py::len(inputs));
  if (m < 1) throw InvalidArgument("allreduce_threads: inputs must hold one array per rank");
  const collective::AllreduceAlgorithm alg = collective::parse_allreduce_algorithm(algorithm);
  std::vector<std::vector<float>> data;
  for (const py::handle& input : inputs) {
    FloatView view = float_view(input, "allreduce_threads: inputs", /*writable=*/false);
    data.emplace_back(view.span().begin(), view.span().end());
  }
  std::vector<collective::AllreduceResidual*> feedback(static_cast<std::size_t>(m), nullptr);
  if (!residuals.is_none()) {
    const auto seq = residuals.cast<py::sequence>();
    if (static_cast<int>(py::len(seq)) != m) {
      throw InvalidArgument(
          "allreduce_threads: residuals must hold one AllreduceResidual per rank");
    }
    for (int r = 0; r < m; ++r) {
      const py::handle item = seq[static_cast<std::size_t>(r)];
      if (!py::isinstance<collective::AllreduceResidual>(item)) {
        throw py::type_error(
            "allreduce_threads: residuals must be thinwire.AllreduceResidual, got " +
            py::str(py::type::handle_of(item)).cast<std::string>());
      }
      feedback[static_cast<std::size_t>(r)] = &item.cast<collective::AllreduceResidual&>();
    }
  }
  {
    py::gil_scoped_release release;
    comm::ThreadsWorld world({.size = m});
    std::vector<std::exception_ptr> errors(static_cast<std::size_t>(m));
    std::vector<std::thread> threads;
    for (int r = 0; r < m; ++r) {
      threads.emplace_back([&, r] {
        const auto i = static_cast<std::size_t>(r);
        try {
          collective::allreduce(world.transport(r), data[i], *c.codec,
                                {.algorithm = alg,
                                 .seed = seed,
                                 .iteration = iteration,
                                 .error_feedback = feedback[i]});
          world.finish(r);
        } catch (const std::exception& e) {
          errors[i] = std::current_exception();
          world.fail(r, e.what());
        }
      });
    }
    for (std::thread& t : threads) t.join();
    for (const std::exception_ptr& error : errors) {
      if (error) std::rethrow_exception(error);
    }
  }
  py::list out;
  for (const std::vector<float>& d : data) {
    out.append(py::array_t<float>(static_cast<py::ssize_t>(d.size()), d.data()));
  }
  return out;
}

// Creates an exception type with several Python bases, e.g. (thinwire.Error, ValueError).
py::object new_exception(py::module_& m, const char* name, py::tuple bases) {
  const std::string qualified = std::string("thinwire.") + name;
  PyObject* type = PyErr_NewException(qualified.c_str(), bases.ptr(), nullptr);
  if (type == nullptr) throw py::error_already_set();
  py::object obj = py::reinterpret_steal<py::object>(type);
  m.attr(name) = obj;
  return obj;
}

}  // namespace
}  // namespace thinwire::python

PYBIND11_MODULE(_thinwire, m) {
  using namespace thinwire;
  using namespace thinwire::python;
  m.doc() = "thinwire codecs: compress float32 vectors into self-describing messages";
  m.attr("__version__") = THINWIRE_VERSION;
  m.def(
      "build_info",
      [] {
        py::dict info;
        info["version"] = THINWIRE_VERSION;
        info["build_type"] = THINWIRE_BUILD_TYPE;
#ifdef __OPTIMIZE__
        info["optimized"] = true;
#else
        info["optimized"] = false;
#endif
#ifdef NDEBUG
        info["assertions"] = false;
#else
        info["assertions"] = true;
#endif
        return info;
      },
      "How the extension was compiled: version, CMake build type, whether the compiler "
      "optimized (an unoptimized build encodes several times slower) and whether assertions "
      "are on.");

  // Static so the translator below can use them after module init; never destroyed, like the
  // module itself (avoids touching Python at process exit).
  static auto* error =
      new py::object(new_exception(m, "Error", py::make_tuple(py::handle(PyExc_RuntimeError))));
  static auto* invalid = new py::object(
      new_exception(m, "InvalidArgument", py::make_tuple(*error, py::handle(PyExc_ValueError))));
  static auto* corrupt = new py::object(
      new_exception(m, "CorruptMessage", py::make_tuple(*error, py::handle(PyExc_ValueError))));
  static auto* transport =
      new py::object(new_exception(m, "TransportError", py::make_tuple(*error)));
  static auto* timeout = new py::object(
      new_exception(m, "Timeout", py::make_tuple(*transport, py::handle(PyExc_TimeoutError))));
  static auto* io = new py::object(
      new_exception(m, "IoError", py::make_tuple(*error, py::handle(PyExc_OSError))));
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const InvalidArgument& e) {
      PyErr_SetString(invalid->ptr(), python_names(e.what()).c_str());
    } catch (const CorruptMessage& e) {
      PyErr_SetString(corrupt->ptr(), python_names(e.what()).c_str());
    } catch (const Timeout& e) {
      PyErr_SetString(timeout->ptr(), python_names(e.what()).c_str());
    } catch (const TransportError& e) {
      PyErr_SetString(transport->ptr(), python_names(e.what()).c_str());
    } catch (const IoError& e) {
      PyErr_SetString(io->ptr(), python_names(e.what()).c_str());
    } catch (const Error& e) {
      PyErr_SetString(error->ptr(), python_names(e.what()).c_str());
    }
  });

  py::class_<PyCodec>(m, "Codec", "An immutable codec built from a spec string (without +ef).")
      .def(py::init(&codec_from_spec), py::arg("spec"))
      .def_property_readonly(
          "spec", [](const PyCodec& c) { return c.codec->spec(); },
          "canonical spec with every parameter spelled out")
      .def_property_readonly("lossless",
                             [](const PyCodec& c) { return c.codec->traits().lossless; })
      .def_property_readonly("unbiased",
                             [](const PyCodec& c) { return c.codec->traits().unbiased; })
      .def_property_readonly("deterministic",
                             [](const PyCodec& c) { return c.codec->traits().deterministic; })
      .def(
          "max_encoded_bytes",
          [](const PyCodec& c, std::size_t d) { return c.codec->max_encoded_bytes(d); },
          py::arg("elements"))
      .def(
          "encode",
          [](const PyCodec& c, const py::handle& v, std::uint64_t seed, std::uint32_t rank,
             std::uint64_t iteration) {
            FloatView in = float_view(v, "encode: v", /*writable=*/false);
            const auto ctx = make_context(seed, rank, iteration);
            return encode_to_bytes(c.codec->max_encoded_bytes(in.span().size()),
                                   [&](std::span<std::byte> out) {
                                     return c.codec->encode_into(in.span(), ctx, out);
                                   });
          },
          py::arg("v"), py::kw_only(), py::arg("seed") = 0, py::arg("rank") = 0,
          py::arg("iteration") = 0, "Encodes a float32 array/tensor into a bytes message.")
      .def(
          "encode_into",
          [](const PyCodec& c, const py::handle& v, const py::handle& out, std::uint64_t seed,
             std::uint32_t rank, std::uint64_t iteration) {
            FloatView in = float_view(v, "encode_into: v", /*writable=*/false);
            const auto ctx = make_context(seed, rank, iteration);
            return encode_into_buffer(
                c.codec->max_encoded_bytes(in.span().size()), out,
                [&](std::span<std::byte> o) { return c.codec->encode_into(in.span(), ctx, o); });
          },
          py::arg("v"), py::arg("out"), py::kw_only(), py::arg("seed") = 0, py::arg("rank") = 0,
          py::arg("iteration") = 0,
          "Encodes into a writable uint8 buffer of at least max_encoded_bytes(len(v)) bytes; "
          "returns the message size.")
      .def("__repr__",
           [](const PyCodec& c) { return "thinwire.Codec('" + c.codec->spec() + "')"; });

  py::class_<codec::ErrorFeedback>(m, "ErrorFeedback",
                                   "Per-worker error-feedback residual around a codec.")
      .def(py::init([](const py::object& c, std::size_t dimension) {
             return std::make_unique<codec::ErrorFeedback>(codec_of(c), dimension);
           }),
           py::arg("codec"), py::arg("dimension"))
      .def_property_readonly("dimension", &codec::ErrorFeedback::dimension)
      .def_property_readonly("codec",
                             [](const codec::ErrorFeedback& ef) { return PyCodec{ef.codec_ptr()}; })
      .def_property_readonly(
          "residual",
          [](const codec::ErrorFeedback& ef) {
            auto r = ef.residual();
            return py::array_t<float>(static_cast<py::ssize_t>(r.size()), r.data());
          },
          "a copy of the residual e")
      .def("max_encoded_bytes", &codec::ErrorFeedback::max_encoded_bytes)
      .def(
          "encode",
          [](codec::ErrorFeedback& ef, const py::handle& v, std::uint64_t seed, std::uint32_t rank,
             std::uint64_t iteration, const py::object& with) {
            FloatView in = float_view(v, "ErrorFeedback.encode: v", /*writable=*/false);
            const auto ctx = make_context(seed, rank, iteration);
            const codec::Codec& c = codec_or_own(ef, with);
            return encode_to_bytes(
                c.max_encoded_bytes(ef.dimension()),
                [&](std::span<std::byte> out) { return ef.encode_into(c, in.span(), ctx, out); });
          },
          py::arg("v"), py::kw_only(), py::arg("seed") = 0, py::arg("rank") = 0,
          py::arg("iteration") = 0, py::arg("codec") = py::none(),
          "Encodes residual + v (with `codec` for this one message when given, e.g. a tuner's "
          "choice) and keeps what the message does not carry.")
      .def(
          "encode_into",
          [](codec::ErrorFeedback& ef, const py::handle& v, const py::handle& out,
             std::uint64_t seed, std::uint32_t rank, std::uint64_t iteration,
             const py::object& with) {
            FloatView in = float_view(v, "ErrorFeedback.encode_into: v", /*writable=*/false);
            const auto ctx = make_context(seed, rank, iteration);
            const codec::Codec& c = codec_or_own(ef, with);
            return encode_into_buffer(
                c.max_encoded_bytes(ef.dimension()), out,
                [&](std::span<std::byte> o) { return ef.encode_into(c, in.span(), ctx, o); });
          },
          py::arg("v"), py::arg("out"), py::kw_only(), py::arg("seed") = 0, py::arg("rank") = 0,
          py::arg("iteration") = 0, py::arg("codec") = py::none())
      .def("reset", &codec::ErrorFeedback::reset)
      .def(
          "save",
          [](const codec::ErrorFeedback& ef) {
            std::ostringstream os(std::ios::binary);
            ef.save(os);
            return py::bytes(os.str());
          },
          "The residual as bytes (dimension, codec spec and checksum included).")
      .def(
          "load",
          [](codec::ErrorFeedback& ef, const py::handle& data) {
            ByteView view = byte_view(data, "ErrorFeedback.load: data", /*writable=*/false);
            std::istringstream is(
                std::string(reinterpret_cast<const char*>(view.span().data()), view.span().size()),
                std::ios::binary);
            ef.load(is);
          },
          py::arg("data"));

  py::class_<collective::AllreduceResidual, codec::ErrorFeedback>(
      m, "AllreduceResidual",
      "The error-feedback residual of one rank for all-reduces of d elements by `algorithm` "
      "('allgather' or 'ring') in a world of `size`: its dimension is d for the all-gather and "
      "the rank's owned chunk for the ring, so it is never built with the wrong length.")
      .def(py::init([](const py::object& c, const std::string& algorithm, std::size_t d, int rank,
                       int size) {
             return std::make_unique<collective::AllreduceResidual>(
                 codec_of(c), collective::parse_allreduce_algorithm(algorithm), d, rank, size);
           }),
           py::arg("codec"), py::arg("algorithm"), py::arg("d"), py::arg("rank"), py::arg("size"))
      .def_property_readonly(
          "algorithm",
          [](const collective::AllreduceResidual& r) {
            return std::string(collective::allreduce_algorithm_name(r.algorithm()));
          })
      .def_property_readonly("length", &collective::AllreduceResidual::length)
      .def_property_readonly("rank", &collective::AllreduceResidual::rank)
      .def_property_readonly("size", &collective::AllreduceResidual::size);

  py::class_<tune::Decision>(m, "Decision", "One tuner decision (tune/tuner.hpp).")
      .def_property_readonly("codec", [](const tune::Decision& d) { return PyCodec{d.codec}; })
      .def_readonly("codec_spec", &tune::Decision::codec_spec)
      .def_readonly("level", &tune::Decision::level, "θ: k, density, s or bucket")
      .def_readonly("levels", &tune::Decision::levels, "s of top-k with QSGD values, else 0")
      .def_readonly("rho", &tune::Decision::rho, "ρ(θ) as the rule evaluated it (1 if not)")
      .def_readonly("bits", &tune::Decision::bits, "predicted message bits (0 if not evaluated)")
      .def_readonly("lr_scale", &tune::Decision::lr_scale, "γ_t/γ₀ (lr coupling)")
      .def("as_dict", &decision_dict)
      .def("__repr__", [](const tune::Decision& d) {
        return "thinwire.Decision(codec='" + d.codec_spec + "', level=" + std::to_string(d.level) +
               ", rho=" + std::to_string(d.rho) + ")";
      });

  py::class_<PyTuner>(m, "Tuner",
                      "Chooses the codec level per message: 'fixed', 'schedule:T0=L0,...' or "
                      "'dynamic' (argmax ρ/C(bits) under the cost model), as `thinwire train "
                      "--tuner/--cost/--lr-coupling`.")
      .def(py::init(&make_py_tuner), py::arg("tuner"), py::kw_only(), py::arg("codec"),
           py::arg("cost") = "bits", py::arg("lr_coupling") = false)
      .def_property_readonly("name", [](const PyTuner& t) { return std::string(t.tuner->name()); })
      .def_readonly("spec", &PyTuner::spec)
      .def_readonly("codec_spec", &PyTuner::codec_spec)
      .def_readonly("cost", &PyTuner::cost_spec, "canonical cost model spec")
      .def_readonly("lr_coupling", &PyTuner::lr_coupling)
      .def("decide", &decide, py::arg("iteration"), py::arg("v"), py::kw_only(),
           py::arg("residual") = py::none(), py::arg("copies") = 1.0, py::arg("fixed") = py::none(),
           "The decision for iteration t on v, or on residual + v when `residual` (an "
           "ErrorFeedback of the same dimension) is given. The message is priced "
           "copies·C(bits) + fixed: copies = how often the iteration sends it (M − 1 hops of an "
           "all-gather), fixed = the iteration's cost whatever the level (default: 0, or the "
           "estimated compute time under cost='auto').")
      .def_property_readonly(
          "last",
          [](const PyTuner& t) -> py::object {
            const tune::Decision* d = t.tuner->last();
            return d == nullptr ? py::object(py::none()) : py::cast(*d);
          },
          "the last decision, or None")
      .def(
          "save_state", [](const PyTuner& t) { return t.tuner->save_state(); },
          "the last decision as text ('' before the first)")
      .def(
          "load_state", [](PyTuner& t, const std::string& state) { t.tuner->load_state(state); },
          py::arg("state"))
      .def("observe_message", &observe_message, py::arg("bits"), py::arg("seconds"),
           "cost='auto': one message of `bits` bits took `seconds` on the link; refits α̂, β̂.")
      .def("observe_compute", &observe_compute, py::arg("seconds"),
           "cost='auto': one iteration spent `seconds` computing (the price's fixed part).")
      .def_property_readonly("link", &link_estimate,
                             "cost='auto': the estimate as a dict (latency_s, bandwidth_bps, "
                             "bandwidth_fitted, compute_s, samples); None for other costs")
      .def(
          "save_link", [](const PyTuner& t) { return auto_link(t, "save_link").save(); },
          "cost='auto': the estimator's windows and fit as text (for a checkpoint)")
      .def(
          "load_link",
          [](PyTuner& t, const std::string& state) {
            tune::OnlineLink& link = auto_link(t, "load_link");
            link.load(state);
          },
          py::arg("state"));

  m.def("decode", &decode_message, py::arg("message"), py::arg("out") = py::none(),
        py::arg("accumulate") = false,
        "Decodes any message; into `out` (float32, C-contiguous, the message's element count) "
        "when given, adding to it with accumulate=True; returns out or a new float32 array.");
  m.def("inspect", &inspect_message, py::arg("message"), "A summary of a message as a dict.");
  m.def(
      "parse_codec",
      [](const std::string& spec) {
        codec::CodecChoice choice = codec::parse_codec(spec);
        return py::make_tuple(PyCodec{std::shared_ptr<const codec::Codec>(std::move(choice.codec))},
                              choice.error_feedback);
      },
      py::arg("spec"), "Parses 'name[:k=v,...][+ef]' into (Codec, error_feedback: bool).");
  m.def("codec_names", [] {
    py::list names;
    for (const auto& entry : codec::codec_registry()) names.append(std::string(entry.name));
    return names;
  });
  m.def("example_codec_specs", &codec::example_codec_specs);

  // The ring all-reduce's layout and seeds (collective/allreduce.hpp), shared with the DDP hook's
  // ring over torch.distributed, and the C++ collective itself as its reference.
  m.def(
      "balanced_chunk",
      [](std::size_t d, int parts, int index) {
        const collective::Chunk c = collective::balanced_chunk(d, parts, index);
        return py::make_tuple(c.begin, c.size);
      },
      py::arg("d"), py::arg("parts"), py::arg("index"),
      "(begin, size) of chunk `index` of a balanced split of d elements into `parts`.");
  m.def("ring_owned_chunk", &collective::ring_owned_chunk, py::arg("rank"), py::arg("size"));
  m.def("ring_hop_seed", &collective::ring_hop_seed, py::arg("seed"), py::arg("step"));
  m.def("ring_final_seed", &collective::ring_final_seed, py::arg("seed"));
  m.def("allreduce_threads", &allreduce_threads, py::arg("inputs"), py::arg("codec"), py::kw_only(),
        py::arg("algorithm") = "ring", py::arg("seed") = 0, py::arg("iteration") = 0,
        py::arg("residuals") = py::none(),
        "C++ collective::allreduce (average) over one thread per input; returns every rank's "
        "result. The reference for the DDP hook's ring.");
}
