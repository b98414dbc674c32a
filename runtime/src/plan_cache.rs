//! The plans of a compiled model by binding of its symbolic dims. Each binding
//! gets its own plan (code specialized to its sizes), built once; at most
//! [`MAX_PLANS`] are kept, the least recently used dropped first — a
//! data-dependent count (`nonzero`, `nms`) can take a new value on every run.

use smelt_ir::Bindings;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The most plans a model keeps.
pub const MAX_PLANS: usize = 64;

pub(crate) struct PlanCache<P> {
    inner: Mutex<Inner<P>>,
}

struct Inner<P> {
    plans: HashMap<Bindings, (Arc<P>, u64)>,
    tick: u64,
}

impl<P> PlanCache<P> {
    pub(crate) fn new() -> PlanCache<P> {
        PlanCache { inner: Mutex::new(Inner { plans: HashMap::new(), tick: 0 }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<P>> {
        // A plan build that panicked left the map as it was: keep using it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The plan for `b`, if built.
    pub(crate) fn get(&self, b: &Bindings) -> Option<Arc<P>> {
        let mut g = self.lock();
        g.tick += 1;
        let now = g.tick;
        g.plans.get_mut(b).map(|(p, used)| {
            *used = now;
            p.clone()
        })
    }

    /// Keeps `p` for `b`, dropping the least recently used plan when full.
    pub(crate) fn insert(&self, b: &Bindings, p: Arc<P>) {
        let mut g = self.lock();
        g.tick += 1;
        let now = g.tick;
        if g.plans.len() >= MAX_PLANS
            && !g.plans.contains_key(b)
            && let Some(old) = g.plans.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone())
        {
            g.plans.remove(&old);
        }
        g.plans.insert(b.clone(), (p, now));
    }

    /// How many plans are kept.
    pub(crate) fn len(&self) -> usize {
        self.lock().plans.len()
    }
}

impl<P> std::fmt::Debug for PlanCache<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PlanCache({} plans)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_PLANS, PlanCache};
    use smelt_ir::Bindings;
    use std::sync::Arc;

    fn b(k: u64) -> Bindings {
        Bindings::from([("K".to_string(), k)])
    }

    #[test]
    fn keeps_at_most_max_plans_dropping_the_least_recently_used() {
        let c = PlanCache::new();
        for k in 0..MAX_PLANS as u64 {
            c.insert(&b(k), Arc::new(k));
        }
        assert_eq!(c.get(&b(0)).as_deref(), Some(&0));
        c.insert(&b(1000), Arc::new(1000));
        assert_eq!(c.len(), MAX_PLANS);
        // 1 was the least recently used (0 was just read).
        assert!(c.get(&b(1)).is_none());
        assert_eq!(c.get(&b(0)).as_deref(), Some(&0));
        assert_eq!(c.get(&b(1000)).as_deref(), Some(&1000));
    }
}
