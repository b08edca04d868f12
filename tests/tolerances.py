"""Tolerances of the test suite, in one place, tied to the method they judge (house style)."""

#: Closed form against our nested quadrature (both float64, smooth integrands): relative.
CLOSED_VS_QUADRATURE = 1e-12
#: Closed form of a kinked activation against scipy.integrate.quad split at the kink: relative.
CLOSED_VS_SCIPY_QUAD = 1e-11
#: Gauss-Hermite against the trapezoidal rule (two independent float64 quadratures): relative.
GH_VS_TRAPEZOID = 1e-12
#: Float64 kernels against the mpmath twin: relative.
F64_VS_MP = 1e-13
#: Digits on which the 30-digit and 50-digit mpmath results must agree.
DIGITS_30_VS_50 = 25
#: Reference values of shared/theory/gep.md, printed with 14 significant digits: relative.
REFERENCE_TABLE = 2e-13
#: Monte Carlo agreement, in standard errors.
MC_SIGMAS = 5.0

# --- learning curves (issue 6) ---------------------------------------------------------------
#: Eigen-sum curves of theory/_flow.py against the quadratic form at A(tau) built by expm: relative.
FLOW_VS_EXPM = 1e-10

# ---- Finite-size GD simulator (diffmix.gpu._simulate; dynamics.md §3, §7, §11; gep.md §4) ----
#: Mean over 8 GD runs against the exact gradient flow, max over a 40-point log grid of (train, test^c),
#: at eta_e = 0.5 (d = 10, p = 120, n = 60, t = 0.01): the fresh-noise bias of dynamics.md §7 (measured
#: 5.0e-3 to 7.0e-3 over noise seeds 0-3). The bias is linear in eta_e: scale the band with it.
GD_VS_FLOW = 1e-2
#: Ratio of the mean GD-minus-flow bias at eta_e = 1.0 and 0.5 (linear in eta_e: 2; measured 2.07-2.26).
GD_BIAS_RATIO = (1.7, 2.6)
#: Loss of the run-averaged iterate (R = 8) against the discrete-GD closed form: finite-R noise
#: (measured 2.1e-3 to 3.6e-3 over noise seeds 0-3).
GD_MEAN_ITERATE_VS_DISCRETE = 6e-3
#: GEP population U_c (gep.md §4) against the exact Mehler-series U_c, relative Frobenius, rows of W
#: normalised, d = 100, p = 300, centered, t = 0.01 (gep.md §4: 1.1e-3; measured 1.12e-3, 5.4e-4).
POPULATION_GEP_VS_EXACT = 2.5e-3

# ---- Extensive centroids and speciation (issue 7; speciation.md, gep.md §4) ----
#: 3-decimal numbers of speciation.md: rounding.
SPECIATION_NOTE_ROUNDING = 6e-4
#: Closed-form identities of the speciation formulas.
SPECIATION_EXACT = 1e-12
#: |measured - predicted| t_half (diffusion-time units), U_gep, d = 50-200, 3-6 instances
#: (speciation.md §4.2: <= 0.14 for psi_p = 4; measured here <= 0.16 with 3 instances).
SPECIATION_T_HALF_BAND = 0.3
#: Weak imbalance: |measured gap - predicted gap (1/2) log(rho_1/rho_2)| in t (measured <= 0.1).
SPECIATION_WEAK_GAP_BAND = 0.25
#: Same formula, two float64 builds of the centroid U_gep (torch in gpu/_finite.py, NumPy in
#: validation/_speciation.py) whose per-neuron quadratures differ (Gauss-Hermite ladders vs fixed
#: 41/41 nodes): relative Frobenius (measured 1e-9 to 1e-6).
CENTROID_GEP_VS_NUMPY_BUILD = 1e-5
#: Centroid U_gep vs TRUE U, relative Frobenius, d = 60, p = 600, n = 300, rho = (0.7, 0.3),
#: sigma^2 = (1, 0.5), mu_c = sqrt(d) e_c, seed 1, normalised rows: measured 2.6e-2 (t = 0.5),
#: 9.0e-3 (t = 1). speciation.md §1.4 at d = 100: 3.1e-2 (t = 0.3), 7.2e-3 (t = 1), 2.2e-3 (t = 2).
CENTROID_GEP_VS_TRUE = {0.5: 4e-2, 1.0: 1.5e-2}
#: The two class outliers (top eigenvalues) of the centroid U_gep vs TRUE U: relative (measured
#: 2.0e-3 (t = 0.5), 2.5e-3 (t = 1) at d = 60; <= 2e-3 at d = 100 in speciation.md §1.4).
CENTROID_OUTLIERS_GEP_VS_TRUE = 5e-3
#: Population GEP with centroids vs the exact Mehler series (order 40), relative Frobenius per class,
#: d = 100, p = 300, sigma^2 = (0.5, 0.25), normalised rows, seed 1 (gep.md §4: 8.5e-4 / 4.8e-4 at
#: t = 0.1, 1.7e-3 / 1.6e-3 at t = 0.5; measured 8.0e-4 / 4.8e-4, 1.67e-3 / 1.49e-3).
CENTROID_POPULATION_GEP_VS_EXACT = {0.1: 1.2e-3, 0.5: 2.5e-3}

# ---- DDPM (diffmix.gpu._ddpm; App. J.1; issue 8 item 2) ----------------------------------------
#: Our float64 linear betas against diffusers' DDPMScheduler (float32 buffers): relative.
DDPM_SCHEDULE_VS_DIFFUSERS = 1e-6
#: alpha_bar = cumprod(1 - beta): ours (float64) against diffusers' float32 cumulative product,
#: relative (1000 float32 products accumulate ~1e-5 of relative rounding; measured below 3e-6).
DDPM_ALPHA_BAR_VS_DIFFUSERS = 2e-5
#: One reverse step against DDPMScheduler.step (fixed_large: sigma^2 = beta), same z, both in float64 on
#: the same float64 schedule: absolute, per element, |x| ~ 1 (two algebraically equal formulas; in
#: float32, diffusers' 1 - abar at t = 1 is off by ~3e-4 relative and the steps differ by ~2e-4).
DDPM_STEP_VS_DIFFUSERS = 1e-12
#: The exact Gaussian-data variance of the ancestral sampler with the oracle eps (a scalar recursion)
#: against s^2: the discretization bias of sigma_t^2 = beta_t with T = 1000 (measured 3.0e-3 at s = 0.5,
#: 2.4e-3 at s = 2): relative.
DDPM_SAMPLER_BIAS = 5e-3
#: Training the tiny U-Net 12 steps (32 blob images, seed 0) must cut the fixed-batch eps-MSE of the
#: step-1 checkpoint to below this fraction (measured 0.47-0.53 at 10 steps, 0.35-0.41 at 15, seeds 0-2).
DDPM_LOSS_DROP = 0.7
#: CUDA resume (bf16 autocast, possibly nondeterministic kernels): max |w_resumed - w_straight| over all
#: weights after 4 Adam steps at lr 2e-4 (each step moves a weight by <= ~lr).
DDPM_CUDA_RESUME_ATOL = 1e-3

# ---- Memorization metrics and the pair classifier (diffmix.gpu._memorization, _classifier; issue 8 item 3) ----
#: nearest_two (exact float64 recomputation of the candidates) against the NumPy float64 brute force
#: (explicit differences, another summation order): relative, on d1 and d2.
KNN_VS_BRUTE = 1e-12
#: Bootstrap interval width at m samples over its width at 4m: 2 for a 1/sqrt(m) law; the band allows
#: Monte Carlo scatter of the two percentile intervals (n_boot = 2000) and of the two samples.
BOOTSTRAP_WIDTH_RATIO = (1.6, 2.5)
#: Held-out balanced accuracy the narrow classifier must reach on the synthetic separable image set.
CLASSIFIER_SYNTHETIC_ACCURACY = 0.95

# ---- Analytic class learning curves (issue 9; test-error.md; derivations/_two_resolvent.py, solvers/_test_error.py) ----
#: Closed-form K-traces k0, k1, k2 (partial fractions) against the 1200-node Marchenko-Pastur quadrature
#: at solutions of the spectral equations, pairs with cancellation factor kappa < 1e3: relative
#: (test-error.md §3 quotes 3e-10 for its own code; measured 3.9e-13 to 3.4e-12 over three models).
CLOSED_VS_MP_QUADRATURE = 1e-11
#: m0, m1 from the continuation against the quadrature E[1/(P k + Q)], E[k/(P k + Q)]: relative
#: (note §5: 5e-14; measured 2e-14 to 3.2e-13).
MP_MOMENTS_VS_QUADRATURE = 1e-12
#: The exact A = I identity of test-error.md §5 (i) in float64 at pairs with kappa < 1e3: relative
#: (measured 1e-15 to 4e-14).
IDENTITY_A_EQ_I_F64 = 1e-11
#: The same with the mpmath twin at 40 digits (an algebraic identity given the spectral equations).
IDENTITY_A_EQ_I_MP = 1e-30
#: The A = I identity on the whole N/2 x N node grid of the default contour (N = 600): relative
#: (test-error.md §5: 1e-13 - 4e-13; measured 5.9e-13 for the C = 2 point).
IDENTITY_GRID = 1e-11
#: Values printed with 5-6 significant digits in test-error.md §6 (its own code): |ours - printed|
#: <= this times max(1, |printed|).
NOTE_DIGITS = 6e-6
#: Train error from the contour against train_error_analytic (real-axis Gauss-Chebyshev, eq. (134)): absolute
#: (measured 5.6e-16 for the C = 3 point).
ANALYTIC_TRAIN_VS_EQ134 = 1e-11
#: Curves with N = 600 against N = 1200 contour nodes (C = 3 point, tau/p in [1e-3, 1e5] and inf): absolute
#: (measured 4.4e-15).
ANALYTIC_NODES_600_VS_1200 = 1e-11
#: Float64 curves against the same discrete sums in mpmath at 40 digits (N = 36 contour): relative
#: (measured 3.3e-16).
ANALYTIC_MP_VS_F64 = 1e-12
#: Seed mean of 4 GEP-matrix flows at d = 60 against the analytic curves, tau/p in [1e-2, 1e3]: relative
#: (finite-size bias and noise; measured 2.1% / 1.8% with 8 seeds).
ANALYTIC_FINITE_D60 = 5e-2

# ---- Bulk density with extensive centroids (solvers/_centroid_spectrum.py; centroid-spectrum.md) ----
#: Vector fixed point with zero centroids (one type) against the centered solver of spectrum.md, g on the
#: real axis and off it: relative (centroid-spectrum.md §1: 1.0e-14; measured 3.7e-13 on the axis, C = 2).
CENTROID_CENTERED_LIMIT = 1e-11
#: Closed-form cell averages of 1/D and 1/D^2 (cell model, §3) against quadrature: relative (measured 3.4e-9;
#: the Taylor branch is truncated at ~1e-8, the small-shift correction at ~1e-10).
CELL_AVERAGE_VS_QUADRATURE = 1e-7
#: Analytic Jacobian of the fixed point against central differences (h = 1e-6): relative (measured 1.7e-9).
CENTROID_JACOBIAN_VS_FD = 1e-7
#: A class split in two identical classes (same variance and centroid) against the merged model, g at
#: complex z and on the real axis (Gauss-Hermite): relative (measured 8e-16: the whitened grids coincide).
CENTROID_DUPLICATE_CLASS = 1e-12
#: g(z) against (1/p) tr (U_gep - z)^{-1}, d = 200 (p = 800), rows of W normalised, seed 1,
#: z = 0.5 + 0.2i, 1 + 0.5i, 0.01 + 0.02i: relative (finite-p noise; single seeds 1-6 deviate by <= 0.009
#: for C = 2 with cosine 0.5, <= 0.006 for case A and C = 3).
CENTROID_STIELTJES_VS_TRACE = 1.5e-2
#: Mass of the bulk density (log-Chebyshev grid on the support) against 1: absolute (case A: measured
#: 0.99990 with 200 points, 0.99970 with the default 400; t = 1.5: 0.99995).
CENTROID_MASS = 1e-3
#: max |CDF(50^2 cells) - CDF(100^2 cells)| over the smeared band of case A (§5: 0.0015; measured 0.0015).
CENTROID_CELLS_50_VS_100 = 3e-3
#: KS of the bulk of sampled U_gep with centroids (outliers removed, rows of W normalised) against the
#: deterministic equivalent, case A at d = 200 (p = 800): measured 0.0045-0.0169 over seeds 1-20 (mean
#: 0.0089); the seed-vs-seed KS at that size is 0.005-0.021 over 10 pairs (mean 0.0098; the note: 0.0075).
CENTROID_KS_D200 = 0.025
#: The same at d = 400 (p = 1600), cases A and E (note: 0.0064-0.0155, seed vs seed 0.0094-0.0144).
CENTROID_KS_D400 = 0.02
#: KS of the same samples against the centered formula (centroids ignored): measured 0.305-0.328 for case
#: A at d = 200 (note: 0.33); the centroids' effect on the bulk is 20-60x the noise.
CENTROID_CENTERED_KS_MIN = 0.25
