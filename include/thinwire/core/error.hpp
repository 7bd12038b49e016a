// thinwire's error policy: everything a caller can act on is an exception derived from
// thinwire::Error; invariants of our own code are asserts. Messages carry context, e.g.
// "qsgd: levels must be in [1, 2^20], got 0".
#pragma once

#include <stdexcept>
#include <string>

namespace thinwire {

// Base of every exception thinwire throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A parameter, spec string, flag or file content is not acceptable.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// A message failed validation: bad magic, unknown version or codec, inconsistent lengths,
// checksum mismatch, or a payload that does not decode to the announced element count.
class CorruptMessage : public Error {
 public:
  using Error::Error;
};

// A peer closed the world, a message could not be delivered, or the backend reported an error.
class TransportError : public Error {
 public:
  using Error::Error;
};

// A blocking call did not complete within its deadline.
class Timeout : public TransportError {
 public:
  using TransportError::TransportError;
};

// Reading or writing a file failed (missing, unreadable, malformed at a given place).
class IoError : public Error {
 public:
  using Error::Error;
};

}  // namespace thinwire
