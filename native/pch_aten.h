// Precompiled header of the targets that compute on tensors but build no torch::nn modules
// (io, image, samplers, media): ATen and the libraries nearly every such file uses.
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>
