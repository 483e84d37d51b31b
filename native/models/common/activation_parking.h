// Parking a model's large activations in CPU memory while it computes something else (the DiT's
// VACE option, WanDitOptions::park_vace): the device layer installs the parking of a lease on
// an accelerator for the calling thread; a model hands a tensor to park() and takes it back with
// unpark() before it computes with it again. With nothing installed (the CPU) both return the
// tensor as it is.
#pragma once
#include <ATen/core/Tensor.h>

namespace wan::models {

class ActivationParking {
 public:
  virtual ~ActivationParking() = default;
  // `tensor` copied to CPU memory; the device copy is freed once the caller drops its own.
  virtual at::Tensor park(const at::Tensor& tensor) = 0;
  // A parked tensor copied back to the compute device; one already there is returned as is.
  virtual at::Tensor unpark(const at::Tensor& tensor) = 0;
};

// Installs `parking` for the calling thread while alive (scopes nest; the innermost wins).
class ActivationParkingScope {
 public:
  explicit ActivationParkingScope(ActivationParking* parking);
  ~ActivationParkingScope();
  ActivationParkingScope(const ActivationParkingScope&) = delete;
  ActivationParkingScope& operator=(const ActivationParkingScope&) = delete;

 private:
  ActivationParking* previous_;
};

// The calling thread's parking, or `tensor` itself when none is installed.
at::Tensor park_activation(const at::Tensor& tensor);
at::Tensor unpark_activation(const at::Tensor& tensor);

}  // namespace wan::models
