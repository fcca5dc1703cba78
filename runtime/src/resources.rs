//! Shared resources (a database pool, an HTTP client) that activities read
//! by type.

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// A map from type to one shared value of that type.
///
/// Register values on the worker with
/// [`WorkerBuilder::resource`](crate::WorkerBuilder::resource); an activity
/// reads them with [`ActivityContext::resource`](crate::ActivityContext::resource).
#[derive(Default, Clone)]
pub struct Resources {
    by_type: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    names: Vec<&'static str>,
}

impl Resources {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `value`, replacing any earlier value of the same type.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        if self
            .by_type
            .insert(TypeId::of::<T>(), Arc::new(value))
            .is_none()
        {
            self.names.push(type_name::<T>());
        }
    }

    /// The value of type `T`, if one was stored.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.by_type
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
    }

    /// Type names of the stored values, in the order they were first stored.
    pub fn type_names(&self) -> &[&'static str] {
        &self.names
    }
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_found_by_type() {
        let mut r = Resources::new();
        r.insert(5_u32);
        r.insert(String::from("pool"));
        r.insert(7_u32);
        assert_eq!(r.get::<u32>(), Some(&7));
        assert_eq!(r.get::<String>().map(String::as_str), Some("pool"));
        assert_eq!(r.get::<u64>(), None);
        assert_eq!(r.type_names().len(), 2);
    }
}
