//! Stage 2 with the Meta Sampler or the Meta Reweighter (Ren et al. §3.2, App. B; official
//! `MetaSampler.py` and `run_networks.py::meta_forward`), on frozen features.
//!
//! Each iteration: (1) draw a batch with the current rates `pi = sigmoid(phi)`: a straight-through
//! Gumbel-softmax over all `N` training instances, instance `i` weighted `pi[y_i]`, temperature
//! `tau`, with replacement (the Reweighter instead takes an instance-balanced batch and weights
//! each loss by `pi[y]`); (2) a differentiable copy of the classifier takes one step of the live
//! SGD (current learning rate, momentum buffer, weight decay) on the batch's loss, re-weighted by
//! the soft sample so that it connects to `phi` without changing its value; (3) the look-ahead
//! classifier's plain softmax cross-entropy on a class-balanced meta batch is backpropagated to
//! `phi`, which takes an Adam step; (4) the live classifier takes its SGD step on the batch's plain
//! loss (the Reweighter: weighted by the detached rates).
//!
//! Memory and time: the official sampler keeps a `B x N` straight-through matrix per batch for
//! autograd. Here the soft sample at the chosen index is computed from per-class summaries of
//! the same `B x N` i.i.d. Gumbel noise (for each row and class: the largest value, where it is,
//! and the log-sum-exp), which is exactly the softmax over `N` because instances of one class
//! share a weight. The summaries are computed in one fused pass over the noise without storing
//! it (`sampler::gumbel_draw`); autograd holds `B x C`.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use super::adam::Adam;
use super::schedule::Timeline;
use super::select::{Best, Splits};
use super::{Blocks, LrPlan, Progress, TrainError};
use crate::loss::{BuildContext, Loss, Terms};
use crate::matrix::{Optimizer, RunSeeds, Stage2};
use crate::model::linear_classifier;
use crate::sampler::gumbel_draw::{self, NoiseDraw};
use crate::sampler::{by_class, ClassBalanced, MetaSpec};
use crate::seed::torch_seed;

/// Training inputs of the bi-level loop: features (by row index) with labels for the batches and
/// the meta set.
pub(super) struct MetaData<'a> {
    /// Features of training rows `[B]` -> `[B, F]`.
    pub(super) train_x: &'a dyn Fn(&Tensor) -> Tensor,
    pub(super) train_y: &'a Tensor,
    pub(super) train_labels: &'a [i64],
    /// Features of meta-set rows.
    pub(super) meta_x: &'a dyn Fn(&Tensor) -> Tensor,
    pub(super) meta_y: &'a Tensor,
    pub(super) meta_labels: &'a [i64],
    pub(super) counts: &'a [usize],
    /// Feature width, and the features' kind and device.
    pub(super) features: (i64, Kind, Device),
    /// Called after each meta step, before the real step (`stage2.double-forward`'s second
    /// pass of the training batch through the backbone; nothing otherwise).
    pub(super) after_meta_step: &'a dyn Fn(),
}

/// What the bi-level loop returns besides the trained classifier.
pub(super) struct MetaOutcome {
    pub(super) iterations: u64,
    pub(super) final_train_loss: f64,
    /// Rates `sigmoid(phi)` after each tenth of training.
    pub(super) rates: Vec<Vec<f64>>,
}

/// The training rows of each class, as lists for the host and as device tensors (all rows class
/// by class, each class's first column, each column's class) built once per training.
pub(super) struct Members {
    lists: Vec<Vec<i64>>,
    flat: Tensor,
    offsets: Tensor,
    column_class: Tensor,
}

impl Members {
    pub(super) fn new(lists: Vec<Vec<i64>>, device: Device) -> Members {
        let mut offsets = Vec::with_capacity(lists.len());
        let mut column_class = Vec::new();
        for (c, m) in (0i64..).zip(&lists) {
            offsets.push(i64::try_from(column_class.len()).expect("fits"));
            column_class.extend(std::iter::repeat_n(c, m.len()));
        }
        let flat: Vec<i64> = lists.iter().flatten().copied().collect();
        Members {
            flat: Tensor::from_slice(&flat).to_device(device),
            offsets: Tensor::from_slice(&offsets).to_device(device),
            column_class: Tensor::from_slice(&column_class).to_device(device),
            lists,
        }
    }

    /// Each class's number of training rows.
    fn sizes(&self) -> Vec<usize> {
        self.lists.iter().map(Vec::len).collect()
    }
}

/// The host noise summaries of the coming iterations, drawn several iterations at a time (up to
/// 8 while they fit in about 32 MiB, so 2 at 1,000 classes and batch 512; at least one).
/// libtorch's OpenMP threads spin for a while after each operation, on the cores the draw's
/// threads use; drawn every iteration, the exact draw paid for that spin every time (at the
/// Fashion-MNIST-LT IF 10 size, about half as much again as the draw alone; `just bench`,
/// `results/bench/stage2-meta.md`). Row `b` of iteration `t` is stream `t B + b` whatever the
/// grouping, so the draws, and the bytes of every run, are those of one iteration at a time.
struct HostNoise {
    sizes: Vec<usize>,
    seed: u64,
    noise: (f64, NoiseDraw),
    threads: usize,
    batch: usize,
    iterations: u64,
    /// Iterations drawn per call.
    ahead: u64,
    /// The summaries of iterations `first..first + rows.len() / batch`.
    rows: Vec<gumbel_draw::RowSummary>,
    first: u64,
}

impl HostNoise {
    /// The noise of `iterations` iterations of `batch` rows under `seed`, drawn by `noise`
    /// (temperature and draw).
    fn new(
        members: &Members,
        seed: u64,
        noise: (f64, NoiseDraw),
        (batch, iterations): (usize, u64),
    ) -> HostNoise {
        let sizes = members.sizes();
        // Three f64-sized numbers per row and class.
        let per_iteration = (batch * sizes.len() * 24).max(1);
        let ahead = (32 << 20) / per_iteration;
        HostNoise {
            sizes,
            seed,
            noise,
            threads: usize::try_from(tch::get_num_threads()).unwrap_or(1),
            batch,
            iterations,
            ahead: u64::try_from(ahead.clamp(1, 8)).expect("fits"),
            rows: Vec::new(),
            first: 0,
        }
    }

    /// The summaries of `iteration`'s rows, drawing the next iterations' if needed.
    fn rows(&mut self, iteration: u64) -> &[gumbel_draw::RowSummary] {
        let (batch, iterations) = (self.batch, self.iterations);
        debug_assert!(iteration < iterations, "iteration {iteration} of {iterations}");
        let drawn = u64::try_from(self.rows.len() / batch).expect("fits");
        if !(self.first..self.first + drawn).contains(&iteration) {
            // The old summaries go before the new ones are drawn.
            self.rows = Vec::new();
            let count = self.ahead.min(iterations - iteration);
            let rows = usize::try_from(count).expect("fits") * batch;
            let stream = iteration * batch as u64;
            let (tau, draw) = self.noise;
            self.rows = gumbel_draw::summaries(
                &self.sizes,
                rows,
                (self.seed, stream),
                tau,
                draw,
                self.threads,
            );
            self.first = iteration;
        }
        let at = usize::try_from(iteration - self.first).expect("fits") * batch;
        &self.rows[at..at + batch]
    }
}

/// A batch drawn by the straight-through Gumbel-softmax, with what the soft sample needs.
pub(super) struct Draw {
    /// Chosen training indices `[B]`.
    pub(super) index: Tensor,
    /// Their classes `[B]`.
    class: Tensor,
    /// The Gumbel noise at the chosen instance `[B]`.
    chosen_noise: Tensor,
    /// `logsumexp` over each class's instances of `noise / tau`, `[B, C]`.
    class_lse: Tensor,
}

impl Draw {
    /// Draws `batch` indices given the log-rates `[C]` (no gradient) on the host: row `b`'s noise
    /// comes from the generator of stream `first_stream + b` under `seed`, drawn by `draw` (see
    /// [`gumbel_draw::summaries`]).
    #[cfg(test)]
    pub(super) fn sample(
        members: &Members,
        log_rates: &Tensor,
        batch: usize,
        seeds: (u64, u64),
        (tau, draw): (f64, NoiseDraw),
    ) -> Draw {
        let threads = usize::try_from(tch::get_num_threads()).unwrap_or(1);
        let rows = gumbel_draw::summaries(&members.sizes(), batch, seeds, tau, draw, threads);
        Draw::from_rows(members, log_rates, &rows)
    }

    /// The draw from host summaries `rows` (one per batch row) of the noise, given the log-rates
    /// `[C]` (no gradient).
    fn from_rows(members: &Members, log_rates: &Tensor, rows: &[gumbel_draw::RowSummary]) -> Draw {
        let batch = i64::try_from(rows.len()).expect("fits");
        let rows_of = |t: Tensor| t.view([batch, -1]);
        let table = |f: fn(&gumbel_draw::RowSummary) -> &[f64]| {
            let flat: Vec<f64> = rows.iter().flat_map(f).copied().collect();
            rows_of(Tensor::from_slice(&flat))
                .to_kind(log_rates.kind())
                .to_device(log_rates.device())
        };
        let positions: Vec<i64> = rows
            .iter()
            .flat_map(|r| r.position.iter().map(|&p| i64::try_from(p).expect("fits")))
            .collect();
        Draw::from_summaries(
            members,
            log_rates,
            &table(|r| &r.max),
            &rows_of(Tensor::from_slice(&positions)).to_device(log_rates.device()),
            table(|r| &r.lse),
        )
    }

    /// A draw of `batch` indices with the noise drawn on the rates' device (a GPU) from libtorch's
    /// generator of that device (seeded with the run's initialisation seed), as the official code
    /// draws it: on a GPU the `B x N` noise costs microseconds while the host pass of
    /// [`gumbel_draw::summaries`] would dominate the iteration. Deterministic for a device and seed,
    /// but a different stream from the CPU path.
    pub(super) fn sample_on_device(
        members: &Members,
        log_rates: &Tensor,
        batch: usize,
        tau: f64,
    ) -> Draw {
        let _guard = tch::no_grad_guard();
        let n: usize = members.lists.iter().map(Vec::len).sum();
        let shape = [i64::try_from(batch).expect("fits"), i64::try_from(n).expect("fits")];
        let uniform = Tensor::rand(shape, (Kind::Float, log_rates.device()));
        let gumbel = -(-uniform.clamp_min(f64::from(f32::MIN_POSITIVE)).log()).log();
        Draw::from_gumbel(members, log_rates, &gumbel.to_kind(log_rates.kind()), tau)
    }

    /// The draw from materialised noise `gumbel` `[B, N]` whose columns run class by class in
    /// `members` order, summarised per (row, class) with scatter reductions on its device.
    fn from_gumbel(members: &Members, log_rates: &Tensor, gumbel: &Tensor, tau: f64) -> Draw {
        let _guard = tch::no_grad_guard();
        let device = gumbel.device();
        let (rows, n) = gumbel.size2().expect("[B, N]");
        let classes = i64::try_from(members.lists.len()).expect("fits");
        let class_of = members.column_class.unsqueeze(0).expand([rows, n], false);
        let empty = |fill: f64| Tensor::full([rows, classes], fill, (gumbel.kind(), device));
        let maxima =
            empty(f64::NEG_INFINITY).internal_scatter_reduce(1, &class_of, gumbel, "amax", true);
        let at_max = gumbel.eq_tensor(&maxima.gather(1, &class_of, false));
        let column = Tensor::arange(n, (Kind::Int64, device)).unsqueeze(0).expand([rows, n], false);
        let first = Tensor::full([rows, classes], n, (Kind::Int64, device))
            .internal_scatter_reduce(
                1,
                &class_of,
                &column.where_self(&at_max, &Tensor::full([1], n, (Kind::Int64, device))),
                "amin",
                true,
            );
        let positions = first - members.offsets.unsqueeze(0);
        let scaled_max = &maxima / tau;
        let sums = empty(0.0).internal_scatter_reduce(
            1,
            &class_of,
            &(gumbel / tau - scaled_max.gather(1, &class_of, false)).exp(),
            "sum",
            true,
        );
        let class_lse = scaled_max + sums.log();
        Draw::from_summaries(members, log_rates, &maxima, &positions, class_lse)
    }

    /// As [`Draw::sample`] with the noise of each class block from `noise(n_c)` (`[B, n_c]`):
    /// the reference computation on materialised noise.
    #[cfg(test)]
    pub(super) fn from_noise(
        members: &Members,
        log_rates: &Tensor,
        tau: f64,
        mut noise: impl FnMut(usize) -> Tensor,
    ) -> Draw {
        let _guard = tch::no_grad_guard();
        let (mut maxima, mut positions, mut sums) = (Vec::new(), Vec::new(), Vec::new());
        for class in &members.lists {
            let g = noise(class.len());
            let (max, at) = g.max_dim(1, false);
            maxima.push(max);
            positions.push(at);
            sums.push((g / tau).logsumexp([1], false));
        }
        Draw::from_summaries(
            members,
            log_rates,
            &Tensor::stack(&maxima, 1),
            &Tensor::stack(&positions, 1),
            Tensor::stack(&sums, 1),
        )
    }

    /// The draw from per-(row, class) summaries `[B, C]`: largest noise, its position in the
    /// class, and log-sum-exp of the noise over the temperature.
    fn from_summaries(
        members: &Members,
        log_rates: &Tensor,
        maxima: &Tensor,
        positions: &Tensor,
        class_lse: Tensor,
    ) -> Draw {
        let _guard = tch::no_grad_guard();
        // argmax over all N of log w_i + g_i: the best class by (log pi_c + its largest noise).
        let class = (maxima + log_rates.detach().unsqueeze(0)).argmax(1, false);
        let pick = |t: &Tensor| t.gather(1, &class.unsqueeze(1), false).squeeze_dim(1);
        let (chosen_noise, within) = (pick(maxima), pick(positions));
        // Row `members.offsets[c] + w` of the class-by-class list is the w-th instance of class
        // c: looked up on the device, without a round trip to the host.
        let index =
            members.flat.index_select(0, &(members.offsets.index_select(0, &class) + within));
        Draw { index, class, chosen_noise, class_lse }
    }

    /// The soft Gumbel-softmax value at each chosen instance, `[B]`, differentiable in `phi`:
    /// `exp((log pi_c* + g_i*)/tau - logsumexp_i (log pi_y_i + g_i)/tau)`.
    pub(super) fn soft(&self, phi: &Tensor, tau: f64) -> Tensor {
        let log_rates = phi.log_sigmoid();
        let chosen = (log_rates.index_select(0, &self.class) + &self.chosen_noise) / tau;
        let total = (log_rates.unsqueeze(0) / tau + &self.class_lse).logsumexp([1], false);
        (chosen - total).exp()
    }
}

/// Live classifier parameters and their SGD momentum buffers.
struct Classifier {
    weight: Tensor,
    bias: Tensor,
    buffers: [Tensor; 2],
}

/// One SGD step as `torch.optim.SGD` (dampening 0; the first step's buffer is the gradient):
/// returns the new parameter and buffer. Differentiable when its inputs are.
fn sgd_step(
    p: &Tensor,
    grad: &Tensor,
    buffer: &Tensor,
    o: &Optimizer,
    lr: f64,
) -> (Tensor, Tensor) {
    let g = grad + p * o.weight_decay;
    let buffer = buffer * o.momentum + &g;
    let step = if o.nesterov { &g + &buffer * o.momentum } else { buffer.shallow_clone() };
    (p - step * lr, buffer)
}

/// The batch loss with per-sample multipliers `scale` (`[B]`): the Meta Sampler's straight-through
/// weights keep the plain loss's normaliser; the Reweighter normalises by the weights' sum.
fn scaled_loss(terms: &Terms, scale: &Tensor, normalise: bool) -> Tensor {
    let weights = terms.weights.as_ref().map_or_else(|| scale.ones_like(), Tensor::shallow_clone);
    let numerator = (&terms.values * scale).sum(None);
    if normalise {
        numerator / (weights * scale).sum(None)
    } else {
        numerator / weights.sum(None)
    }
}

/// The look-ahead: one differentiable SGD step of a copy of the classifier on the batch loss
/// scaled by `scale`, then the plain softmax cross-entropy of the result on the meta batch.
#[expect(
    clippy::too_many_arguments,
    reason = "the look-ahead takes the classifier, the live SGD state and both batches as tensors, so that the hypergradient test can call it alone"
)]
pub(super) fn look_ahead_meta_loss(
    weight: &Tensor,
    bias: &Tensor,
    buffers: &[Tensor; 2],
    loss: &dyn Loss,
    (x, y): (&Tensor, &Tensor),
    (scale, normalise): (&Tensor, bool),
    (meta_x, meta_y): (&Tensor, &Tensor),
    optimizer: &Optimizer,
    lr: f64,
) -> Tensor {
    let w0 = weight.detach().set_requires_grad(true);
    let b0 = bias.detach().set_requires_grad(true);
    let inner = scaled_loss(&loss.terms(&x.linear(&w0, Some(&b0)), y), scale, normalise);
    let grads = Tensor::run_backward(&[inner], &[&w0, &b0], true, true);
    let (w1, _) = sgd_step(&w0, &grads[0], &buffers[0], optimizer, lr);
    let (b1, _) = sgd_step(&b0, &grads[1], &buffers[1], optimizer, lr);
    // Plain softmax cross-entropy in the features' precision (tch's `cross_entropy_for_logits`
    // computes in f32).
    let logits = meta_x.linear(&w1, Some(&b1));
    logits.log_softmax(-1, logits.kind()).nll_loss(meta_y)
}

/// Runs the bi-level stage 2 for `iterations` iterations.
pub(super) fn train(
    stage2: &Stage2,
    spec: &MetaSpec,
    data: &MetaData<'_>,
    seeds: &RunSeeds,
    selection: (&Splits<'_>, &mut Best),
    progress: &mut dyn Progress,
) -> Result<(nn::VarStore, nn::Linear, MetaOutcome), TrainError> {
    let (width, kind, device) = data.features;
    let reweight = stage2.sampler.is_reweighter();
    tch::manual_seed(torch_seed(seeds.init));
    let vs = nn::VarStore::new(device);
    let classes = i64::try_from(data.counts.len()).expect("fits");
    let linear = linear_classifier(&(vs.root() / "classifier"), width, classes);
    let mut live = Classifier {
        weight: linear.ws.shallow_clone(),
        bias: linear.bs.as_ref().expect("bias").shallow_clone(),
        buffers: [linear.ws.zeros_like(), linear.bs.as_ref().expect("bias").zeros_like()],
    };
    let loss = stage2.loss.build(&BuildContext::new(data.counts.to_vec(), device))?;
    let phi_init = Tensor::from_slice(&spec.initial_logits(data.counts));
    let mut phi = phi_init.to_kind(kind).to_device(device).set_requires_grad(true);
    let mut adam = Adam::new(spec, classes, phi.kind(), device);
    let members = Members::new(by_class(data.train_labels, data.counts.len()), device);
    let mut meta_set = ClassBalanced::new(data.meta_labels, data.counts.len(), 1);
    let mut order = ChaCha8Rng::seed_from_u64(seeds.order);
    let mut meta_order = ChaCha8Rng::seed_from_u64(seeds.order);
    meta_order.set_stream(1);
    let gumbel_seed = crate::seed::Seed(seeds.order).derive("gumbel");
    let batch = stage2.batch_size as usize;
    let timeline = Timeline::of_stage2(stage2, data.counts).map_err(TrainError::Data)?;
    let iterations = timeline.iterations();
    let noise = (spec.temperature, spec.draw);
    let mut host_noise = HostNoise::new(&members, gumbel_seed, noise, (batch, iterations));
    // The Reweighter's batches: instance-balanced (its sampler's batches), drawn from `order`.
    let reweighter_batches = if reweight {
        let mut sampler = stage2.sampler.build(data.train_labels, data.counts.len(), 1);
        timeline.batches(&mut *sampler, batch, &mut order)
    } else {
        Vec::new()
    };
    let plan = LrPlan { peak: stage2.optimizer.lr, start_factor: 1.0, timeline };
    let mut blocks = Blocks::new(usize::try_from(iterations).expect("fits"));
    let mut rates = Vec::new();
    let (splits, best) = selection;
    for iteration in 0..iterations {
        if progress.stop_requested() {
            return Err(TrainError::Interrupted);
        }
        let lr = plan.at(iteration);
        // (1) the batch and its per-sample multipliers, connected to phi.
        let (index, scale) = if reweight {
            let indices = &reweighter_batches[usize::try_from(iteration).expect("fits")];
            let index = Tensor::from_slice(indices).to_device(device);
            let classes_of = data.train_y.index_select(0, &index);
            (index, phi.sigmoid().index_select(0, &classes_of))
        } else {
            let log_rates = phi.log_sigmoid();
            // The exact draw on a GPU materialises the noise there; the order-statistics draw is
            // cheap enough on the host everywhere, and so the same on every device.
            let draw = if device.is_cuda() && spec.draw.is_exact() {
                Draw::sample_on_device(&members, &log_rates, batch, spec.temperature)
            } else {
                let rows = host_noise.rows(iteration);
                Draw::from_rows(&members, &log_rates, rows)
            };
            let soft = draw.soft(&phi, spec.temperature);
            let scale = soft.detach().neg().g_add_scalar(1.0) + &soft;
            (draw.index, scale)
        };
        let (x, y) = ((data.train_x)(&index), data.train_y.index_select(0, &index));
        // (2)-(3) look-ahead, meta loss, Adam step on phi.
        let meta_index =
            Tensor::from_slice(&meta_set.draw(spec.meta_batch as usize, &mut meta_order))
                .to_device(device);
        let meta_loss = look_ahead_meta_loss(
            &live.weight,
            &live.bias,
            &live.buffers,
            &*loss,
            (&x, &y),
            (&scale, reweight),
            (&(data.meta_x)(&meta_index), &data.meta_y.index_select(0, &meta_index)),
            &stage2.optimizer,
            lr,
        );
        let grad = Tensor::run_backward(&[meta_loss], &[&phi], false, false);
        adam.step(&mut phi, &grad[0]);
        (data.after_meta_step)();
        // (4) the real step on the plain (Reweighter: detached-weighted) loss.
        let terms = loss.terms(&x.linear(&live.weight, Some(&live.bias)), &y);
        let value =
            if reweight { scaled_loss(&terms, &scale.detach(), true) } else { terms.mean() };
        let scalar = value.to_kind(Kind::Double).double_value(&[]);
        if !scalar.is_finite() {
            return Err(TrainError::Diverged { epoch: 1, iteration, value: scalar });
        }
        let grads = Tensor::run_backward(&[value], &[&live.weight, &live.bias], false, false);
        live.step(&grads, &stage2.optimizer, lr);
        if let Some((block, mean)) = blocks.push(scalar) {
            rates.push(
                Vec::<f64>::try_from(&phi.sigmoid().to_kind(Kind::Double).to_device(Device::Cpu))
                    .expect("f64"),
            );
            best.offer_split(&vs, iteration + 1, splits, |f| linear.forward(f));
            progress.epoch(block, blocks.count(), mean, lr);
        }
    }
    let outcome = MetaOutcome { iterations, final_train_loss: blocks.mean(), rates };
    Ok((vs, linear, outcome))
}

impl Classifier {
    /// The live SGD step, in place.
    fn step(&mut self, grads: &[Tensor], optimizer: &Optimizer, lr: f64) {
        let _guard = tch::no_grad_guard();
        let params = [&mut self.weight, &mut self.bias];
        for ((p, g), buffer) in params.into_iter().zip(grads).zip(self.buffers.iter_mut()) {
            let (new, new_buffer) = sgd_step(p, g, buffer, optimizer, lr);
            p.copy_(&new);
            *buffer = new_buffer;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::LossSpec;
    use crate::sampler::testing::ks_distance as ks;
    use crate::seed::Seed;
    use crate::vocab::Selection;
    use crate::vocab::Stage2Classifier;

    fn f64s(values: &[f64]) -> Tensor {
        Tensor::from_slice(values)
    }

    /// Noise `[B, n_c]` per class from a fixed list, in order.
    fn fixed_noise(noise: &[Vec<f64>], batch: i64) -> impl FnMut(usize) -> Tensor + '_ {
        let mut class = 0;
        move |n| {
            let t = f64s(&noise[class]).view([batch, i64::try_from(n).unwrap()]);
            class += 1;
            t
        }
    }

    // Members of 3 classes over 7 instances: class 0 {0, 3, 5}, class 1 {1, 6}, class 2 {2, 4}.
    fn members() -> Members {
        Members::new(vec![vec![0, 3, 5], vec![1, 6], vec![2, 4]], Device::Cpu)
    }

    fn noise() -> Vec<Vec<f64>> {
        // B = 2 rows; per class a [2, n_c] block, row-major.
        vec![
            vec![0.3, -0.2, 1.1, 0.5, 0.9, -1.0],
            vec![0.8, 0.1, -0.4, 2.2],
            vec![-0.5, 1.4, 0.0, 0.3],
        ]
    }

    #[test]
    fn device_summaries_equal_the_per_class_reference() {
        let phi = f64s(&[0.4, -0.3, 1.2]);
        let tau = 0.7;
        let blocks: Vec<Tensor> = noise()
            .iter()
            .map(|b| f64s(b).view([2, i64::try_from(b.len() / 2).unwrap()]))
            .collect();
        let gumbel = Tensor::cat(&blocks, 1);
        let fast = Draw::from_gumbel(&members(), &phi.log_sigmoid(), &gumbel, tau);
        let slow = Draw::from_noise(&members(), &phi.log_sigmoid(), tau, fixed_noise(&noise(), 2));
        assert!(fast.index.equal(&slow.index));
        assert!(fast.class.equal(&slow.class));
        assert!(fast.chosen_noise.allclose(&slow.chosen_noise, 1e-12, 1e-12, false));
        assert!(fast.class_lse.allclose(&slow.class_lse, 1e-12, 1e-12, false));
        // Ties inside a class resolve to the first position, as `max_dim` does.
        let tied = Tensor::from_slice(&[0.5f64, 0.9, 0.9, 0.1, 0.2, 0.3, 0.4]).view([1, 7]);
        let draw = Draw::from_gumbel(&members(), &f64s(&[0.0, -9.0, -9.0]), &tied, 1.0);
        assert_eq!(Vec::<i64>::try_from(&draw.index).unwrap(), [3]);
        // On the CPU the device path runs too (statistically a softmax draw; shapes checked).
        let drawn = Draw::sample_on_device(&members(), &phi.log_sigmoid(), 5, tau);
        assert_eq!(drawn.index.size(), [5]);
        assert_eq!(drawn.class_lse.size(), [5, 3]);
    }

    #[test]
    fn soft_sample_equals_the_softmax_over_all_instances() {
        let phi = f64s(&[0.4, -0.3, 1.2]);
        let tau = 0.7;
        let draw = Draw::from_noise(&members(), &phi.log_sigmoid(), tau, fixed_noise(&noise(), 2));
        let soft = Vec::<f64>::try_from(&draw.soft(&phi, tau)).unwrap();
        let index = Vec::<i64>::try_from(&draw.index).unwrap();
        // Independent computation: z_i = (log sigmoid(phi[y_i]) + g_i) / tau over all 7 instances,
        // the chosen index is argmax z, the soft value softmax(z)[argmax].
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        let phis = [0.4, -0.3, 1.2];
        for row in 0..2 {
            let mut z = [0.0; 7];
            for (c, block) in members().lists.iter().enumerate() {
                let n = block.len();
                for (k, &i) in block.iter().enumerate() {
                    let g = noise()[c][row * n + k];
                    z[usize::try_from(i).unwrap()] = (sigmoid(phis[c]).ln() + g) / tau;
                }
            }
            let best = (0..7).max_by(|&a, &b| z[a].total_cmp(&z[b])).unwrap();
            let total: f64 = z.iter().map(|v| v.exp()).sum();
            assert_eq!(index[row], i64::try_from(best).unwrap());
            assert!((soft[row] - z[best].exp() / total).abs() < 1e-12, "{soft:?}");
        }
    }

    /// A small f64 problem: features, labels, classifier and SGD state.
    struct Problem {
        x: Tensor,
        y: Tensor,
        meta_x: Tensor,
        meta_y: Tensor,
        weight: Tensor,
        bias: Tensor,
        buffers: [Tensor; 2],
        optimizer: Optimizer,
    }

    fn problem() -> Problem {
        tch::manual_seed(5);
        let opts = (Kind::Double, Device::Cpu);
        Problem {
            x: Tensor::randn([2, 4], opts),
            y: Tensor::from_slice(&[0i64, 2]),
            meta_x: Tensor::randn([6, 4], opts),
            meta_y: Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2]),
            weight: Tensor::randn([3, 4], opts),
            bias: Tensor::randn([3], opts),
            buffers: [Tensor::randn([3, 4], opts) * 0.1, Tensor::randn([3], opts) * 0.1],
            optimizer: Optimizer { lr: 0.5, momentum: 0.9, weight_decay: 5e-4, nesterov: false },
        }
    }

    // The hypergradient of the meta loss with respect to phi, through the straight-through
    // sample, the differentiable SGD step (momentum buffer, weight decay) and the meta
    // cross-entropy, against central finite differences in f64. The straight-through forward value
    // is 1 whatever phi, so the differentiated function is F(phi) = meta loss with per-sample
    // multipliers 1 + soft(phi) - soft(phi0): equal to the real objective at phi0 and with the same
    // gradient there. Tolerance: 1e-7 absolute (central differences with h = 1e-5 err by ~h^2).
    #[test]
    fn hypergradient_matches_finite_differences() {
        let p = problem();
        let members = members();
        let phi0 = f64s(&[0.4, -0.3, 1.2]);
        let draw = Draw::from_noise(&members, &phi0.log_sigmoid(), 1.0, fixed_noise(&noise(), 2));
        let anchor = draw.soft(&phi0, 1.0).detach();
        let context = BuildContext::new(vec![3, 2, 2], Device::Cpu);
        for spec in [LossSpec::BALANCED_SOFTMAX, LossSpec::Cbw] {
            let loss = spec.build(&context).unwrap();
            let objective = |phi: &Tensor| {
                let scale = draw.soft(phi, 1.0) - &anchor + 1.0;
                look_ahead_meta_loss(
                    &p.weight,
                    &p.bias,
                    &p.buffers,
                    &*loss,
                    (&p.x, &p.y),
                    (&scale, false),
                    (&p.meta_x, &p.meta_y),
                    &p.optimizer,
                    0.5,
                )
            };
            let phi = phi0.copy().set_requires_grad(true);
            let analytic = Tensor::run_backward(&[objective(&phi)], &[&phi], false, false);
            let analytic = Vec::<f64>::try_from(&analytic[0]).unwrap();
            assert!(analytic.iter().any(|g| g.abs() > 1e-4), "{analytic:?}");
            let h = 1e-5;
            for c in 0..3 {
                let shifted = |d: f64| {
                    let mut v = vec![0.4, -0.3, 1.2];
                    v[c] += d;
                    objective(&f64s(&v)).double_value(&[])
                };
                let numeric = (shifted(h) - shifted(-h)) / (2.0 * h);
                assert!(
                    (numeric - analytic[c]).abs() < 1e-7,
                    "{spec:?} class {c}: {numeric} vs {}",
                    analytic[c]
                );
            }
        }
    }

    /// Features of 4 overlapping Gaussian classes with counts 400, 100, 25, 6.
    fn long_tailed_blobs() -> (Tensor, Tensor, Vec<i64>, Vec<usize>) {
        tch::manual_seed(11);
        let counts = vec![400usize, 100, 25, 6];
        let labels: Vec<i64> = counts
            .iter()
            .enumerate()
            .flat_map(|(c, &n)| std::iter::repeat_n(i64::try_from(c).unwrap(), n))
            .collect();
        let y = Tensor::from_slice(&labels);
        let means = Tensor::randn([4, 8], (Kind::Float, Device::Cpu)) * 1.2;
        let x = means.index_select(0, &y) + Tensor::randn([531, 8], (Kind::Float, Device::Cpu));
        (x, y, labels, counts)
    }

    fn learned_rates(loss: LossSpec) -> Vec<f64> {
        struct Quiet;
        impl Progress for Quiet {
            fn epoch(&mut self, _: u64, _: u64, _: f64, _: f64) {}
        }
        let (x, y, labels, counts) = long_tailed_blobs();
        let spec = MetaSpec { meta_batch: 64, ..MetaSpec::default() };
        let stage2 = Stage2 {
            stage1: "softmax".into(),
            classifier: Stage2Classifier::Retrain,
            selection: Selection::Last,
            features: crate::vocab::Features::Cached,
            loss,
            sampler: crate::sampler::SamplerSpec::Meta(spec.clone()),
            iterations: 400,
            batch_size: 64,
            optimizer: Optimizer { lr: 0.1, momentum: 0.9, weight_decay: 5e-4, nesterov: false },
            stepping: crate::vocab::Stepping::Iteration,
            double_forward: false,
        };
        let rows = |i: &Tensor| x.index_select(0, i);
        let data = MetaData {
            train_x: &rows,
            train_y: &y,
            train_labels: &labels,
            meta_x: &rows,
            meta_y: &y,
            meta_labels: &labels,
            counts: &counts,
            features: (8, Kind::Float, Device::Cpu),
            after_meta_step: &|| {},
        };
        let seeds =
            crate::matrix::RunSeeds { seed: Seed(1), subset: 1, init: 2, order: 3, augment: 4 };
        let splits = Splits { val: (&x, &y), test: (&x, &y) };
        let mut best = Best::new(Selection::Last);
        let (_, _, outcome) =
            train(&stage2, &spec, &data, &seeds, (&splits, &mut best), &mut Quiet).unwrap();
        assert_eq!(outcome.rates.len(), 10);
        outcome.rates.last().unwrap().clone()
    }

    fn variance(r: &[f64]) -> f64 {
        let mean = r.iter().sum::<f64>() / r.len() as f64;
        r.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / r.len() as f64
    }

    // The paper's Figure 3: with plain Softmax the learned rates move tail classes up and head
    // classes down; with Balanced Softmax (which already accounts for the label prior) they stay
    // closer to uniform.
    #[test]
    fn softmax_rates_favour_the_tail_and_balanced_softmax_stays_closer_to_uniform() {
        let softmax = learned_rates(LossSpec::Softmax);
        let balanced = learned_rates(LossSpec::BALANCED_SOFTMAX);
        assert!(softmax[3] > 0.5 && softmax[0] < 0.5, "{softmax:?}");
        assert!(softmax[3] > softmax[0], "{softmax:?}");
        assert!(variance(&balanced) < variance(&softmax), "{balanced:?} vs {softmax:?}");
    }

    /// Class counts of the three profiles the order-statistics draw is checked on: CIFAR-10-LT
    /// and CIFAR-100-LT at imbalance factor 100 (N = 12,406 and 10,847), and an ImageNet-LT-sized
    /// profile (1,000 classes from 1,280 to 5 images; 385 many-shot, 479 medium-shot and 136
    /// few-shot classes and N = 115,846, as ImageNet-LT; asserted).
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "positive counts below 5,001, rounded or floored as the datasets' profiles"
    )]
    fn profiles() -> [(&'static str, Vec<usize>); 3] {
        let cifar = |n_max: f64, classes: usize| -> Vec<usize> {
            let last = (classes - 1) as f64;
            (0..classes).map(|c| (n_max * 0.01f64.powf(c as f64 / last)) as usize).collect()
        };
        let imagenet: Vec<usize> = (0..1000)
            .map(|c| {
                let c = f64::from(c);
                // Many-shot (385 classes, 1,280 down to 101), medium-shot (479, 100 to 20) and
                // few-shot (136, 19 to 5), log-linear within the lower two.
                let v = if c < 385.0 {
                    100.5 * (1280.0f64 / 100.5).powf((1.0 - c / 385.0).powf(3.73))
                } else if c < 864.0 {
                    let t = (c - 385.0) / 478.0;
                    (100.4f64.ln() * (1.0 - t) + 20.0f64.ln() * t).exp()
                } else {
                    let t = (c - 864.0) / 135.0;
                    (19.4f64.ln() * (1.0 - t) + 5.0f64.ln() * t).exp()
                };
                // One image off each of the first 20 classes: ImageNet-LT's N.
                v.round() as usize - usize::from(c < 20.0)
            })
            .collect();
        let shots = |keep: fn(usize) -> bool| imagenet.iter().filter(|&&n| keep(n)).count();
        assert_eq!(imagenet.iter().sum::<usize>(), 115_846);
        assert_eq!((shots(|n| n > 100), shots(|n| (20..=100).contains(&n))), (385, 479));
        assert!(imagenet.windows(2).all(|w| w[0] >= w[1]) && imagenet[999] == 5);
        [
            ("CIFAR-10-LT", cifar(5000.0, 10)),
            ("CIFAR-100-LT", cifar(500.0, 100)),
            ("ImageNet-LT", imagenet),
        ]
    }

    /// Members of classes of sizes `counts`, rows numbered class by class.
    fn consecutive_members(counts: &[usize]) -> Members {
        let mut next = 0i64..;
        let lists = counts.iter().map(|&n| next.by_ref().take(n).collect()).collect();
        Members::new(lists, Device::Cpu)
    }

    #[test]
    fn host_noise_ahead_is_the_noise_of_one_iteration_at_a_time() {
        // 11 iterations of batch 3 drawn 4 at a time (the last call 3), read in order and out of
        // order: each iteration's rows are those drawn for it alone, by either draw.
        let members = consecutive_members(&[40, 7, 2]);
        for draw in [NoiseDraw::Exact, NoiseDraw::OrderStatistics] {
            let mut noise = HostNoise::new(&members, 5, (1.0, draw), (3, 11));
            noise.ahead = 4;
            for iteration in (0..11).chain([2, 10, 0]) {
                let alone =
                    gumbel_draw::summaries(&members.sizes(), 3, (5, iteration * 3), 1.0, draw, 1);
                assert_eq!(noise.rows(iteration), alone, "iteration {iteration}");
            }
        }
        // The default: 8 iterations a call for small problems, fewer when 8 would pass 32 MiB.
        assert_eq!(HostNoise::new(&members, 5, (1.0, NoiseDraw::Exact), (512, 9)).ahead, 8);
        let many = consecutive_members(&[1; 1000]);
        assert_eq!(HostNoise::new(&many, 5, (1.0, NoiseDraw::Exact), (512, 9)).ahead, 2);
    }

    /// Per row of a draw: the soft value at the chosen instance, and its derivative in each
    /// class's rate logit, `soft (1[c = c*] - p_c) (1 - sigmoid(phi_c))` (temperature 1), `p_c`
    /// the class's share of the softmax's normaliser. A row's contribution to the hypergradient
    /// is this times the meta loss's derivative in the row's weight, which the draw does not
    /// touch.
    fn soft_and_gradient(draw: &Draw, phi: &Tensor) -> (Vec<f64>, Vec<Vec<f64>>) {
        let soft = Vec::<f64>::try_from(&draw.soft(phi, 1.0)).unwrap();
        let log_rates = phi.log_sigmoid();
        let share = (log_rates.unsqueeze(0) + &draw.class_lse).softmax(1, Kind::Double);
        let share = Vec::<Vec<f64>>::try_from(&share).unwrap();
        let class = Vec::<i64>::try_from(&draw.class).unwrap();
        let rest = Vec::<f64>::try_from(&(phi.sigmoid().neg() + 1.0)).unwrap();
        let grads = (0..soft.len())
            .map(|b| {
                (0..rest.len())
                    .map(|c| {
                        let chosen = f64::from(u8::from(class[b] == i64::try_from(c).unwrap()));
                        soft[b] * (chosen - share[b][c]) * rest[c]
                    })
                    .collect()
            })
            .collect();
        (soft, grads)
    }

    #[test]
    fn soft_sample_gradient_formula_matches_autograd() {
        let counts = [300usize, 90, 40, 7];
        let members = consecutive_members(&counts);
        let phi = f64s(&[0.5, -0.2, 0.1, 1.0]).set_requires_grad(true);
        let draw = Draw::sample(
            &members,
            &phi.log_sigmoid().detach(),
            64,
            (3, 0),
            (1.0, NoiseDraw::OrderStatistics),
        );
        let (_, grads) = soft_and_gradient(&draw, &phi);
        let auto = Tensor::run_backward(&[draw.soft(&phi, 1.0).sum(None)], &[&phi], false, false);
        let auto = Vec::<f64>::try_from(&auto[0]).unwrap();
        for (c, a) in auto.iter().enumerate() {
            let mine: f64 = grads.iter().map(|g| g[c]).sum();
            assert!((mine - a).abs() < 1e-12, "class {c}: {mine} vs {a}");
        }
    }

    /// The order-statistics draw against the exact one on three class profiles, 8,000 rows each
    /// (batch rows are i.i.d.; the two draws on disjoint streams), rates rising from head to
    /// tail. Under both, the chosen classes follow `n_c pi_c / sum n pi` (chi-square, p > 0.001,
    /// neighbouring classes merged so that every bin expects 20 draws or more). Between them:
    /// - the soft values, and the soft sample's gradient in the rate logits of the head, a
    ///   middle class and the smallest class drawn by order statistics, have the same
    ///   distribution (two-sample Kolmogorov-Smirnov distance below its 0.1% critical value,
    ///   1.95 sqrt(2 / 8000) = 0.031);
    /// - so has the log-sum-exp of every class drawn by order statistics (`n_c > 2 TOP`; KS at
    ///   0.1% over all of them, Bonferroni);
    /// - and the log-sum-exps' means agree: per class a two-sample z, pooled over the classes
    ///   as `sum z / sqrt(k)` (independent classes), within 3.29 (0.1%).
    ///
    /// Fixed seeds: the test is deterministic. Power: the pooled mean fails when the tail
    /// sum's mean is 2% off, the per-class KS when it is 5% off; neither sees the tail sum's
    /// variance (dropping it passes; its moments have their own test in `sampler::gumbel_draw`),
    /// which moves the log-sum-exp far less than the exact smallest exponentials do.
    #[test]
    fn order_statistics_draw_matches_the_exact_draw_in_distribution() {
        let rows = 8000;
        for (name, counts) in profiles() {
            let classes = counts.len();
            let members = consecutive_members(&counts);
            let phi: Vec<f64> =
                (0..classes).map(|c| -1.0 + 2.0 * c as f64 / (classes - 1) as f64).collect();
            let phi = f64s(&phi);
            let draw = |noise, first: u64| {
                Draw::sample(&members, &phi.log_sigmoid(), rows, (11, first), (1.0, noise))
            };
            let exact = draw(NoiseDraw::Exact, 0);
            let ordered = draw(NoiseDraw::OrderStatistics, rows as u64);
            // Chosen classes against n_c pi_c / sum n pi.
            let pi: Vec<f64> = Vec::<f64>::try_from(&phi.sigmoid()).unwrap();
            let total: f64 = counts.iter().zip(&pi).map(|(&n, p)| n as f64 * p).sum();
            for d in [&exact, &ordered] {
                let mut hits = vec![0usize; classes];
                for c in Vec::<i64>::try_from(&d.class).unwrap() {
                    hits[usize::try_from(c).unwrap()] += 1;
                }
                let (mut chi2, mut dof, mut bin) = (0.0, 0usize, (0.0, 0.0));
                for (c, &h) in hits.iter().enumerate() {
                    bin.0 += rows as f64 * counts[c] as f64 * pi[c] / total;
                    bin.1 += h as f64;
                    if bin.0 >= 20.0 || c + 1 == classes {
                        chi2 += (bin.1 - bin.0) * (bin.1 - bin.0) / bin.0;
                        dof += 1;
                        bin = (0.0, 0.0);
                    }
                }
                let critical = statrs::distribution::ContinuousCDF::inverse_cdf(
                    &statrs::distribution::ChiSquared::new((dof - 1) as f64).unwrap(),
                    0.999,
                );
                assert!(
                    chi2 < critical,
                    "{name}: chi2 {chi2} over {dof} bins, critical {critical}"
                );
            }
            // Soft values and their gradients.
            let (soft_e, grad_e) = soft_and_gradient(&exact, &phi);
            let (soft_o, grad_o) = soft_and_gradient(&ordered, &phi);
            let critical = 1.95 * (2.0 / rows as f64).sqrt();
            let d = ks(&soft_e, &soft_o);
            assert!(d < critical, "{name}: soft values, KS distance {d}");
            let column = |g: &[Vec<f64>], c: usize| g.iter().map(|r| r[c]).collect::<Vec<f64>>();
            let drawn: Vec<usize> =
                (0..classes).filter(|&c| counts[c] > 2 * gumbel_draw::TOP).collect();
            let smallest = *drawn.last().expect("a class drawn by order statistics");
            for c in [0, classes / 2, smallest] {
                let d = ks(&column(&grad_e, c), &column(&grad_o, c));
                assert!(d < critical, "{name}: gradient in class {c}'s logit, KS distance {d}");
            }
            // Log-sum-exps of every class drawn by order statistics.
            let (lse_e, lse_o) = (
                Vec::<Vec<f64>>::try_from(&exact.class_lse).unwrap(),
                Vec::<Vec<f64>>::try_from(&ordered.class_lse).unwrap(),
            );
            let alpha = 0.001 / drawn.len() as f64;
            let critical = (-(alpha / 2.0).ln() / 2.0).sqrt() * (2.0 / rows as f64).sqrt();
            let mut pooled = 0.0;
            for &c in &drawn {
                let (e, o) = (column(&lse_e, c), column(&lse_o, c));
                let d = ks(&e, &o);
                assert!(d < critical, "{name}: log-sum-exp of class {c}, KS distance {d}");
                let moments = |v: &[f64]| {
                    let mean = v.iter().sum::<f64>() / v.len() as f64;
                    let var =
                        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
                    (mean, var / v.len() as f64)
                };
                let ((me, ve), (mo, vo)) = (moments(&e), moments(&o));
                pooled += (mo - me) / (ve + vo).sqrt();
            }
            let z = pooled / (drawn.len() as f64).sqrt();
            assert!(z.abs() < 3.29, "{name}: log-sum-exp means, pooled z {z}");
        }
    }
}
