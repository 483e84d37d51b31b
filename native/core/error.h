// Typed errors a user can act on. Each message names where, what, and what to do.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace wan {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A bad graph or a bad input value; the runner exits with 2.
class ValidationError : public Error {
 public:
  using Error::Error;
};

// A file, key, shape or dtype problem while reading weights.
class LoadError : public Error {
 public:
  using Error::Error;
};

// An allocation on a (possibly budgeted) device failed.
class OutOfMemory : public Error {
 public:
  OutOfMemory(const std::string& message, std::string device, std::string tensor,
              int64_t bytes_requested, int64_t bytes_free, int64_t bytes_capacity)
      : Error(message),
        device_(std::move(device)),
        tensor_(std::move(tensor)),
        bytes_requested_(bytes_requested),
        bytes_free_(bytes_free),
        bytes_capacity_(bytes_capacity) {}
  const std::string& device() const { return device_; }
  const std::string& tensor() const { return tensor_; }
  int64_t bytes_requested() const { return bytes_requested_; }
  int64_t bytes_free() const { return bytes_free_; }
  int64_t bytes_capacity() const { return bytes_capacity_; }

 private:
  std::string device_, tensor_;
  int64_t bytes_requested_, bytes_free_, bytes_capacity_;
};

// The user stopped the run (SIGINT, ComfyUI interrupt); the runner exits with 130.
class Cancelled : public Error {
 public:
  Cancelled() : Error("cancelled") {}
};

// "12.5 MiB"-style formatting for messages.
std::string format_bytes(int64_t bytes);

}  // namespace wan
