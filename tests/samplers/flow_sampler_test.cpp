// The samplers against the official schedulers: recorded scheduler.step trajectories
// (goldens/schedulers.safetensors) and the sampling loops of the end-to-end goldens, driven with
// the recorded DiT outputs so that no model is involved.
#include "samplers/flow_sampler.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "io/tensor_index.h"
#include "samplers/guidance.h"
#include "test_util.h"

namespace wan::samplers {
namespace {

using testing::golden_tensor;

nlohmann::json golden_metadata_json(const std::string& name, const std::string& field) {
  const auto metadata = io::read_metadata(testing::tiny_path("goldens/" + name + ".safetensors"));
  return nlohmann::json::parse(metadata.at(field));
}

// Replays traj.<golden_solver>.steps<N>.shift<S>.*: sample.0, then prev_sample.i =
// step(model_output.i, i, sample_i) for the recorded steps. Tolerance 2e-6 (fixture manifest).
void expect_trajectories_match(const std::string& solver, const std::string& golden_solver) {
  const auto trajectories = golden_metadata_json("schedulers", "trajectories");
  ASSERT_FALSE(trajectories.empty());
  for (const auto& trajectory : trajectories) {
    const int64_t steps = trajectory.at("steps").get<int64_t>();
    const double shift = trajectory.at("shift").get<double>();
    const int64_t steps_run = trajectory.at("n_steps_run").get<int64_t>();
    const std::string prefix = "traj." + golden_solver + ".steps" + std::to_string(steps) +
                               ".shift" + std::to_string(static_cast<int>(shift)) + ".";
    SCOPED_TRACE(prefix);
    auto sampler = make_flow_sampler(solver, steps, shift);
    at::Tensor sample = golden_tensor("schedulers", prefix + "sample.0");
    for (int64_t i = 0; i < steps_run; ++i) {
      const std::string n = std::to_string(i);
      EXPECT_EQ(sampler->timesteps()[i].item<int64_t>(),
                golden_tensor("schedulers", prefix + "timestep." + n).item<int64_t>());
      sample = sampler->step(golden_tensor("schedulers", prefix + "model_output." + n), i, sample);
      EXPECT_ALLCLOSE(sample, golden_tensor("schedulers", prefix + "prev_sample." + n), 2e-6);
    }
  }
}

// Runs the sampling loop of an e2e golden: noise -> for each step, cfg of the recorded DiT
// outputs, sampler step -> compare latent_out of every step (tolerance 1e-5).
void expect_sampling_loop_matches(const std::string& name) {
  SCOPED_TRACE(name);
  const auto kwargs = golden_metadata_json(name, "generate_kwargs");
  const auto sampler = make_flow_sampler(kwargs.at("sample_solver").get<std::string>(),
                                         kwargs.at("sampling_steps").get<int64_t>(),
                                         kwargs.at("shift").get<double>());
  const double guide_scale = kwargs.at("guide_scale").get<double>();
  EXPECT_TRUE(at::equal(sampler->timesteps(), golden_tensor(name, "timesteps")))
      << sampler->timesteps();
  EXPECT_ALLCLOSE(sampler->sigmas(), golden_tensor(name, "sigmas"), 1e-7);

  at::Tensor latent = golden_tensor(name, "noise");
  for (int64_t i = 0; i < sampler->num_steps(); ++i) {
    const std::string step = "step." + std::to_string(i) + ".";
    EXPECT_EQ(sampler->timesteps()[i].item<int64_t>(),
              golden_tensor(name, step + "timestep").item<int64_t>());
    const at::Tensor noise_pred =
        cfg_combine(golden_tensor(name, step + "noise_pred_cond"),
                    golden_tensor(name, step + "noise_pred_uncond"), guide_scale);
    latent = sampler->step(noise_pred, i, latent);
    EXPECT_ALLCLOSE(latent, golden_tensor(name, step + "latent_out"), 1e-5);
  }
  EXPECT_ALLCLOSE(latent, golden_tensor(name, "latent_final"), 1e-5);
}

TEST(FlowUniPc, TrajectoriesMatchOfficialSchedulerWithin2e6) {
  expect_trajectories_match("unipc", "unipc");
}

TEST(FlowDpmpp, TrajectoriesMatchOfficialSchedulerWithin2e6) {
  expect_trajectories_match("dpm++", "dpmpp");
}

TEST(FlowUniPc, T2vSamplingLoopMatchesOfficialWithin1e5) {
  expect_sampling_loop_matches("e2e_t2v_unipc");
}

TEST(FlowDpmpp, T2vSamplingLoopMatchesOfficialWithin1e5) {
  expect_sampling_loop_matches("e2e_t2v_dpmpp");
}

TEST(FlowUniPc, I2vFlf2vVaceSamplingLoopsMatchOfficialWithin1e5) {
  for (const char* name : {"e2e_i2v", "e2e_flf2v", "e2e_vace"}) expect_sampling_loop_matches(name);
}

// A bf16 DiT: its outputs (and the guidance) rounded to bf16 while the latents stay float32. The
// samplers must keep the latents float32; the deviation from the float32 run is the cost of bf16
// (measured max abs 5.2e-2 t2v unipc, 3.7e-2 t2v dpm++, 1.0e-1 flf2v at its last step, on latents
// of magnitude up to ~7; bound 0.15).
TEST(FlowSampler, Bf16DitOutputsKeepFloat32LatentsWithinMeasuredBound) {
  for (const std::string name : {"e2e_t2v_unipc", "e2e_t2v_dpmpp", "e2e_flf2v"}) {
    SCOPED_TRACE(name);
    const auto kwargs = golden_metadata_json(name, "generate_kwargs");
    const auto sampler = make_flow_sampler(kwargs.at("sample_solver").get<std::string>(),
                                           kwargs.at("sampling_steps").get<int64_t>(),
                                           kwargs.at("shift").get<double>());
    at::Tensor latent = golden_tensor(name, "noise");
    for (int64_t i = 0; i < sampler->num_steps(); ++i) {
      const std::string step = "step." + std::to_string(i) + ".";
      const at::Tensor noise_pred =
          cfg_combine(golden_tensor(name, step + "noise_pred_cond").to(at::kBFloat16),
                      golden_tensor(name, step + "noise_pred_uncond").to(at::kBFloat16),
                      kwargs.at("guide_scale").get<double>());
      latent = sampler->step(noise_pred, i, latent);
      ASSERT_EQ(latent.scalar_type(), at::kFloat);
      EXPECT_ALLCLOSE(latent, golden_tensor(name, step + "latent_out"), 0.15);
    }
  }
}

// With a final sigma of 0 the last step returns the data prediction x - sigma * v of its input
// (both solvers drop to first order there, and the UniPC corrector does not reach it).
TEST(FlowSampler, LastStepLandsOnDataPrediction) {
  for (const std::string solver : {"unipc", "dpm++", "euler"}) {
    SCOPED_TRACE(solver);
    for (int64_t steps : {1, 4}) {
      auto sampler = make_flow_sampler(solver, steps, 5.0);
      at::Tensor x = at::randn({1, 16, 2, 4, 4});
      at::Tensor v, input;
      for (int64_t i = 0; i < steps; ++i) {
        v = at::randn_like(x);
        input = x;
        x = sampler->step(v, i, x);
      }
      const at::Tensor sigma_last = sampler->sigmas()[steps - 1];
      EXPECT_ALLCLOSE(x, input - sigma_last * v, solver == "euler" ? 1e-6 : 0.0);
    }
  }
}

// The trajectory above must not be reachable with a first-order-only UniPC: the multistep and
// corrector terms change the result well above the tolerance, so a dropped term would fail.
TEST(FlowUniPc, HigherOrderTermsMatterAboveTolerance) {
  auto unipc = make_flow_sampler("unipc", 10, 3.0);
  auto euler = make_flow_sampler("euler", 10, 3.0);
  const std::string prefix = "traj.unipc.steps10.shift3.";
  at::Tensor a = golden_tensor("schedulers", prefix + "sample.0");
  at::Tensor b = a;
  for (int64_t i = 0; i < 5; ++i) {
    const at::Tensor v = golden_tensor("schedulers", prefix + "model_output." + std::to_string(i));
    a = unipc->step(v, i, a);
    b = euler->step(v, i, b);
    // Step 0 has no history: UniPC order 1 in x0 form is exactly an Euler step in v.
    if (i == 0) {
      EXPECT_ALLCLOSE(a, b, 1e-6);
    }
  }
  EXPECT_GT((a - b).abs().max().item<double>(), 1e-3);
}

TEST(FlowEuler, UsesTheUnipcSchedule) {
  for (int64_t steps : {1, 3, 10, 50}) {
    for (double shift : {1.0, 3.0, 5.0, 8.0, 16.0}) {
      const auto euler = make_flow_sampler("euler", steps, shift);
      const auto unipc = make_flow_sampler("unipc", steps, shift);
      EXPECT_TRUE(at::equal(euler->timesteps(), unipc->timesteps()));
      EXPECT_TRUE(at::equal(euler->sigmas(), unipc->sigmas()));
    }
  }
}

// On the straight flow x(s) = x0 + s * (noise - x0) the velocity is constant, so Euler is exact
// at every sigma; only float32 rounding remains (tolerance 2e-6 for |x| <= ~5).
TEST(FlowEuler, IntegratesLinearFlowExactly) {
  const at::Tensor x0 = at::randn({16, 3, 8, 8});
  const at::Tensor noise = at::randn({16, 3, 8, 8});
  const at::Tensor v = noise - x0;
  auto sampler = make_flow_sampler("euler", 20, 5.0);
  const at::Tensor sigmas = sampler->sigmas().to(at::kDouble);
  const auto exact = [&](int64_t i) { return x0.to(at::kDouble) + sigmas[i] * v.to(at::kDouble); };
  at::Tensor x = exact(0).to(at::kFloat);
  for (int64_t i = 0; i < sampler->num_steps(); ++i) {
    x = sampler->step(v, i, x);
    EXPECT_ALLCLOSE(x, exact(i + 1), 2e-6);
  }
  EXPECT_ALLCLOSE(x, x0, 2e-6);
}

// A varying velocity field: each step must be x + (sigma_{i+1} - sigma_i) * v_i.
TEST(FlowEuler, StepIsSigmaDifferenceTimesVelocity) {
  auto sampler = make_flow_sampler("euler", 6, 8.0);
  at::Tensor x = at::randn({2, 5});
  for (int64_t i = 0; i < sampler->num_steps(); ++i) {
    const at::Tensor v = at::randn({2, 5});
    const double ds = sampler->sigmas()[i + 1].item<double>() - sampler->sigmas()[i].item<double>();
    const at::Tensor expected = x.to(at::kDouble) + ds * v.to(at::kDouble);
    x = sampler->step(v, i, x);
    EXPECT_ALLCLOSE(x, expected, 1e-6);
  }
}

TEST(FlowSampler, RejectsUnknownSolverNamingValidChoices) {
  try {
    make_flow_sampler("ddim", 10, 5.0);
    FAIL() << "no exception";
  } catch (const ValidationError& error) {
    const std::string message = error.what();
    for (const std::string name : {"'ddim'", "unipc", "dpm++", "euler"})
      EXPECT_NE(message.find(name), std::string::npos) << message;
  }
  EXPECT_THROW(make_flow_sampler("unipc", 0, 5.0), ValidationError);
  EXPECT_THROW(make_flow_sampler("dpm++", 10, 0.0), ValidationError);
}

TEST(FlowSampler, RejectsOutOfOrderStepsAndMismatchedInputs) {
  auto sampler = make_flow_sampler("unipc", 4, 5.0);
  const at::Tensor x = at::randn({16, 2, 4, 4});
  EXPECT_THROW(sampler->step(x, 4, x), ValidationError);
  EXPECT_THROW(sampler->step(x, -1, x), ValidationError);
  EXPECT_THROW(sampler->step(at::randn({16, 2, 4, 5}), 0, x), ValidationError);
  const at::Tensor next = sampler->step(x, 0, x);
  EXPECT_THROW(sampler->step(next, 2, next), ValidationError);
  EXPECT_THROW(sampler->step(next, 0, next), ValidationError);
  EXPECT_THROW(sampler->step(at::randn({16, 1, 4, 4}), 1, at::randn({16, 1, 4, 4})),
               ValidationError);
  EXPECT_NO_THROW(sampler->step(next, 1, next));
}

// Starting at a later step (as the official does when the first timestep given is not the first
// of the schedule) runs the warm-up from there: same as a fresh first-order start.
TEST(FlowSampler, MayStartAtALaterStep) {
  for (const std::string solver : {"unipc", "dpm++"}) {
    SCOPED_TRACE(solver);
    auto sampler = make_flow_sampler(solver, 10, 5.0);
    const at::Tensor x = at::randn({4, 4});
    const at::Tensor v = at::randn({4, 4});
    const at::Tensor sigma = sampler->sigmas()[3];
    const at::Tensor sigma_next = sampler->sigmas()[4];
    // First order in x0 form from sigma to sigma_next with x0 = x - sigma * v.
    const at::Tensor x0 = x - sigma * v;
    const at::Tensor expected =
        (sigma_next / sigma) * x +
        (1 - sigma_next) *
            (1 - at::exp(at::log(sigma_next / (1 - sigma_next)) - at::log(sigma / (1 - sigma)))) *
            x0;
    EXPECT_ALLCLOSE(sampler->step(v, 3, x), expected, 1e-5);
  }
}

}  // namespace
}  // namespace wan::samplers
