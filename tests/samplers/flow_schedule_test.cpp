// Schedules against goldens/schedulers.safetensors (official FlowUniPCMultistepScheduler and
// get_sampling_sigmas / retrieve_timesteps / FlowDPMSolverMultistepScheduler outputs).
#include "samplers/flow_schedule.h"

#include <string>

#include "core/error.h"
#include "test_util.h"

namespace wan::samplers {
namespace {

using testing::golden_tensor;

const int64_t kGoldenSteps[] = {3, 10, 50};
const double kGoldenShifts[] = {3.0, 5.0, 8.0};

std::string key(const std::string& solver, int64_t steps, double shift, const std::string& field) {
  return solver + ".steps" + std::to_string(steps) + ".shift" +
         std::to_string(static_cast<int>(shift)) + "." + field;
}

TEST(FlowSchedule, UnipcTimestepsExactAndSigmasWithin1e7) {
  for (int64_t steps : kGoldenSteps) {
    for (double shift : kGoldenShifts) {
      SCOPED_TRACE(key("unipc", steps, shift, ""));
      const FlowSchedule schedule = unipc_schedule(steps, shift);
      const at::Tensor timesteps =
          golden_tensor("schedulers", key("unipc", steps, shift, "timesteps"));
      ASSERT_EQ(schedule.timesteps.scalar_type(), at::kLong);
      EXPECT_TRUE(at::equal(schedule.timesteps, timesteps))
          << schedule.timesteps << " vs " << timesteps;
      ASSERT_EQ(schedule.sigmas.scalar_type(), at::kFloat);
      EXPECT_ALLCLOSE(schedule.sigmas,
                      golden_tensor("schedulers", key("unipc", steps, shift, "sigmas")), 1e-7);
      EXPECT_EQ(schedule.sigmas[steps].item<float>(), 0.0f);
    }
  }
}

TEST(FlowSchedule, DpmppSamplingSigmasWithin1e12TimestepsExactSigmasWithin1e7) {
  for (int64_t steps : kGoldenSteps) {
    for (double shift : kGoldenShifts) {
      SCOPED_TRACE(key("dpmpp", steps, shift, ""));
      const at::Tensor sampling = sampling_sigmas(steps, shift);
      ASSERT_EQ(sampling.scalar_type(), at::kDouble);
      EXPECT_ALLCLOSE(sampling,
                      golden_tensor("schedulers", key("dpmpp", steps, shift, "sampling_sigmas")),
                      1e-12);
      const FlowSchedule schedule = dpmpp_schedule(steps, shift);
      const at::Tensor timesteps =
          golden_tensor("schedulers", key("dpmpp", steps, shift, "timesteps"));
      EXPECT_TRUE(at::equal(schedule.timesteps, timesteps))
          << schedule.timesteps << " vs " << timesteps;
      EXPECT_ALLCLOSE(schedule.sigmas,
                      golden_tensor("schedulers", key("dpmpp", steps, shift, "sigmas")), 1e-7);
    }
  }
}

TEST(FlowSchedule, NumpyLinspaceKeepsBothEndpoints) {
  const at::Tensor y = numpy_linspace(0.999, 0.0, 4);
  EXPECT_EQ(y[0].item<double>(), 0.999);
  EXPECT_EQ(y[3].item<double>(), 0.0);
  // numpy: 1 * (-0.333) + 0.999 rounded twice.
  const double step = -0.999 / 3.0;
  EXPECT_EQ(y[1].item<double>(), step + 0.999);
  const at::Tensor flat = numpy_linspace(2.0, 2.0, 3);
  EXPECT_TRUE(at::equal(flat, at::full({3}, 2.0, at::kDouble)));
}

TEST(FlowSchedule, ShiftMapsEndpointsToThemselves) {
  const at::Tensor s = at::tensor({0.0, 0.5, 1.0}, at::kDouble);
  const at::Tensor shifted = shift_sigmas(s, 5.0);
  EXPECT_EQ(shifted[0].item<double>(), 0.0);
  EXPECT_EQ(shifted[1].item<double>(), 2.5 / 3.0);
  EXPECT_EQ(shifted[2].item<double>(), 1.0);
}

TEST(FlowSchedule, RejectsNonPositiveStepsAndShift) {
  EXPECT_THROW(unipc_schedule(0, 5.0), ValidationError);
  EXPECT_THROW(dpmpp_schedule(-3, 5.0), ValidationError);
  EXPECT_THROW(unipc_schedule(10, 0.0), ValidationError);
  EXPECT_THROW(sampling_sigmas(10, -1.0), ValidationError);
  EXPECT_THROW(sampling_sigmas(10, std::nan("")), ValidationError);
}

}  // namespace
}  // namespace wan::samplers
