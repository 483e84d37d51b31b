#include "models/common/activation_parking.h"

namespace wan::models {
namespace {

thread_local ActivationParking* current_parking = nullptr;

}  // namespace

ActivationParkingScope::ActivationParkingScope(ActivationParking* parking)
    : previous_(current_parking) {
  current_parking = parking;
}

ActivationParkingScope::~ActivationParkingScope() { current_parking = previous_; }

at::Tensor park_activation(const at::Tensor& tensor) {
  return current_parking && tensor.defined() ? current_parking->park(tensor) : tensor;
}

at::Tensor unpark_activation(const at::Tensor& tensor) {
  return current_parking && tensor.defined() ? current_parking->unpark(tensor) : tensor;
}

}  // namespace wan::models
