//! Ratings from pairwise votes: a Bradley–Terry fit with a confidence
//! interval per model, for the personal leaderboard.
//!
//! Each vote becomes games between the models it compared: the winner beats
//! every other model of the round (score 1), and a tie or "all bad" is half
//! a win for each side of every pair. The fit maximises the likelihood of
//! those games over log-strengths θ (P(i beats j) = 1 / (1 + e^(θj − θi)))
//! by Newton's method. Every model also plays one virtual win and one
//! virtual loss against a fixed average opponent (θ = 0): a prior that
//! keeps a model that always won finite, pulls models with few votes
//! towards the middle, and pins the scale. The interval is ±1.96 standard
//! errors from the inverse of the information matrix at the optimum, taken
//! relative to the mean of the rated models (a vote measures a difference,
//! never an absolute level), so it narrows as votes accumulate. Ratings are
//! shown on the Elo scale: 1000 is the average rated model, +400 is
//! ten-to-one odds.

/// One game: `a` against `b` (indices into the model list) and `a`'s score:
/// 1 for a win, 0.5 for a tie, 0 for a loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Game {
    /// The first model.
    pub a: usize,
    /// The second model.
    pub b: usize,
    /// The first model's score.
    pub score_a: f64,
}

/// A fitted rating.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rating {
    /// Log-strength relative to the mean of the rated models.
    pub theta: f64,
    /// Its standard error.
    pub std_err: f64,
}

/// The Elo-scale rating of the average rated model.
pub const BASE: f64 = 1000.0;
/// Elo points per unit of θ (400 points = odds of ten to one).
pub const ELO_PER_THETA: f64 = 400.0 / std::f64::consts::LN_10;
/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_964;
/// Fewer blind votes than this and a model is shown, never ranked.
pub const MIN_VOTES: u32 = 5;

impl Rating {
    /// The rating on the Elo scale.
    pub fn elo(&self) -> f64 {
        BASE + self.theta * ELO_PER_THETA
    }

    /// The 95% interval on the Elo scale.
    pub fn elo_interval(&self) -> (f64, f64) {
        let half = Z95 * self.std_err * ELO_PER_THETA;
        (self.elo() - half, self.elo() + half)
    }

    /// The probability of beating a model rated `other`.
    pub fn p_beats(&self, other: &Rating) -> f64 {
        logistic(self.theta - other.theta)
    }
}

fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Fit `n` models to `games`. Games naming a model outside `0..n`, or a
/// model against itself, are ignored.
pub fn fit(n: usize, games: &[Game]) -> Vec<Rating> {
    let games: Vec<Game> = games
        .iter()
        .copied()
        .filter(|g| g.a < n && g.b < n && g.a != g.b && (0.0..=1.0).contains(&g.score_a))
        .collect();
    let mut theta = vec![0.0_f64; n];
    let mut info = vec![vec![0.0_f64; n]; n];
    for _ in 0..100 {
        let (grad, h) = gradient_and_information(&theta, &games);
        info = h;
        let Some(step) = solve(&info, &grad) else {
            break;
        };
        let mut largest = 0.0_f64;
        for (t, s) in theta.iter_mut().zip(&step) {
            // Damped: the log-likelihood is concave, but a far first step
            // from a lopsided record can overshoot.
            let s = s.clamp(-2.0, 2.0);
            *t += s;
            largest = largest.max(s.abs());
        }
        if largest < 1e-10 {
            break;
        }
    }
    let (_, h) = gradient_and_information(&theta, &games);
    if !h.is_empty() {
        info = h;
    }
    let Some(cov) = invert(&info) else {
        return theta
            .iter()
            .map(|t| Rating {
                theta: *t,
                std_err: f64::INFINITY,
            })
            .collect();
    };
    // Ratings are relative: what a vote measures is a difference between
    // two models, so each rating and its error are taken against the mean
    // of the rated models (with one model there is nothing to compare).
    if n < 2 {
        return theta
            .iter()
            .enumerate()
            .map(|(i, t)| Rating {
                theta: *t,
                std_err: cov[i][i].max(0.0).sqrt(),
            })
            .collect();
    }
    let nf = n as f64;
    let mean = theta.iter().sum::<f64>() / nf;
    let total: f64 = cov.iter().flatten().sum();
    theta
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let row: f64 = cov[i].iter().sum();
            let var = cov[i][i] - 2.0 * row / nf + total / (nf * nf);
            Rating {
                theta: t - mean,
                std_err: var.max(0.0).sqrt(),
            }
        })
        .collect()
}

/// The log-likelihood's gradient and the (positive definite) information
/// matrix, including the prior games against the average opponent.
fn gradient_and_information(theta: &[f64], games: &[Game]) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = theta.len();
    let mut grad = vec![0.0; n];
    let mut info = vec![vec![0.0; n]; n];
    for (i, t) in theta.iter().enumerate() {
        // One win and one loss against θ = 0.
        let p = logistic(*t);
        grad[i] += 1.0 - 2.0 * p;
        info[i][i] += 2.0 * p * (1.0 - p);
    }
    for g in games {
        let p = logistic(theta[g.a] - theta[g.b]);
        let d = g.score_a - p;
        grad[g.a] += d;
        grad[g.b] -= d;
        let w = p * (1.0 - p);
        info[g.a][g.a] += w;
        info[g.b][g.b] += w;
        info[g.a][g.b] -= w;
        info[g.b][g.a] -= w;
    }
    (grad, info)
}

/// `m⁻¹ v` (the Newton step), or `None` for a singular matrix.
fn solve(m: &[Vec<f64>], v: &[f64]) -> Option<Vec<f64>> {
    let inv = invert(m)?;
    Some(
        inv.iter()
            .map(|row| row.iter().zip(v).map(|(a, b)| a * b).sum())
            .collect(),
    )
}

/// Gauss–Jordan inverse with partial pivoting; a leaderboard has tens of
/// models, not thousands.
fn invert(m: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let mut a: Vec<Vec<f64>> = m.to_vec();
    let mut inv: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    for col in 0..n {
        let pivot = (col..n).max_by(|x, y| a[*x][col].abs().total_cmp(&a[*y][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let p = a[col][col];
        for j in 0..n {
            a[col][j] /= p;
            inv[col][j] /= p;
        }
        for r in 0..n {
            if r != col {
                let f = a[r][col];
                if f != 0.0 {
                    for j in 0..n {
                        a[r][j] -= f * a[col][j];
                        inv[r][j] -= f * inv[col][j];
                    }
                }
            }
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win(a: usize, b: usize) -> Game {
        Game { a, b, score_a: 1.0 }
    }

    fn tie(a: usize, b: usize) -> Game {
        Game { a, b, score_a: 0.5 }
    }

    fn order(r: &[Rating]) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..r.len()).collect();
        idx.sort_by(|x, y| r[*y].theta.total_cmp(&r[*x].theta));
        idx
    }

    #[test]
    fn a_model_that_always_wins_ranks_first_with_a_finite_rating() {
        // 0 beats everyone; 1 beats 2 two times out of three.
        let mut games = Vec::new();
        for _ in 0..6 {
            games.push(win(0, 1));
            games.push(win(0, 2));
        }
        games.extend([win(1, 2), win(1, 2), win(2, 1)]);
        let r = fit(3, &games);
        assert_eq!(order(&r), [0, 1, 2]);
        assert!(r[0].theta.is_finite() && r[0].std_err.is_finite());
        assert!(r[0].elo() > BASE && r[2].elo() < BASE, "{r:?}");
        assert!(r[0].p_beats(&r[1]) > 0.75, "{r:?}");
    }

    #[test]
    fn ties_split_evenly() {
        let games: Vec<Game> = (0..10).map(|_| tie(0, 1)).collect();
        let r = fit(2, &games);
        assert!((r[0].theta - r[1].theta).abs() < 1e-9, "{r:?}");
        assert!((r[0].elo() - BASE).abs() < 1e-6);
        // A tie is worth half a win: one win and one loss fit the same as two ties.
        let a = fit(2, &[win(0, 1), win(1, 0)]);
        let b = fit(2, &[tie(0, 1), tie(0, 1)]);
        assert!((a[0].theta - b[0].theta).abs() < 1e-9);
        assert!((a[0].std_err - b[0].std_err).abs() < 1e-9);
        // A model that ties a lot and wins once is above one that ties and loses once.
        let r = fit(2, &[tie(0, 1), tie(0, 1), win(0, 1)]);
        assert!(r[0].theta > r[1].theta);
    }

    #[test]
    fn intervals_shrink_with_more_votes() {
        let record = |k: usize| -> Vec<Game> {
            (0..k)
                .flat_map(|_| [win(0, 1), win(0, 1), win(1, 0), tie(0, 1)])
                .collect()
        };
        let few = fit(2, &record(1));
        let some = fit(2, &record(5));
        let many = fit(2, &record(50));
        let width = |r: &Rating| r.elo_interval().1 - r.elo_interval().0;
        assert!(width(&few[0]) > width(&some[0]), "{few:?} {some:?}");
        assert!(width(&some[0]) > width(&many[0]) * 2.0, "{some:?} {many:?}");
        // And the estimate settles near the true odds (2.5 of 4 = 62.5%).
        assert!((many[0].p_beats(&many[1]) - 0.625).abs() < 0.03, "{many:?}");
        let (lo, hi) = many[0].elo_interval();
        assert!(lo < many[0].elo() && many[0].elo() < hi);
    }

    #[test]
    fn no_games_is_the_prior_and_bad_games_are_ignored() {
        let r = fit(2, &[win(0, 0), win(0, 7)]);
        assert_eq!(r.len(), 2);
        assert!(
            r.iter()
                .all(|x| x.theta.abs() < 1e-12 && x.std_err.is_finite())
        );
        assert!(fit(0, &[]).is_empty());
    }
}
