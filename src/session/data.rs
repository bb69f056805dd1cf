//! Data sets loaded once per session and split once per (validation share, seed), shared by
//! every run that needs them. Loading happens on the runs' own threads, never on the lab's:
//! a second run waiting for the same data set waits for the first load instead of starting
//! its own.

use std::collections::HashMap;
use std::hash::Hash;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use crate::data::{self, DataError, Dataset, DatasetName, PreparedData};

/// One value per key, computed once; concurrent askers wait for the first.
type Slots<K, V> = Mutex<HashMap<K, Arc<Mutex<Option<Arc<V>>>>>>;

fn get_or_make<K: Hash + Eq, V, E>(
    slots: &Slots<K, V>,
    key: K,
    make: impl FnOnce() -> Result<V, E>,
) -> Result<Arc<V>, E> {
    let slot = Arc::clone(slots.lock().expect("not poisoned").entry(key).or_default());
    let mut value = slot.lock().expect("not poisoned");
    if let Some(v) = value.as_ref() {
        return Ok(Arc::clone(v));
    }
    // An error is not kept: the next run tries again (the user may have fetched the data).
    let made = Arc::new(make()?);
    *value = Some(Arc::clone(&made));
    Ok(made)
}

/// Like [`Slots`], but a value lives only while someone holds it: the slot keeps a weak
/// reference, so a split goes when the last run training on it ends.
type WeakSlots<K, V> = Mutex<HashMap<K, Arc<Mutex<Weak<V>>>>>;

fn get_or_make_shared<K: Hash + Eq, V, E>(
    slots: &WeakSlots<K, V>,
    key: K,
    make: impl FnOnce() -> Result<V, E>,
) -> Result<Arc<V>, E> {
    let slot = {
        let mut map = slots.lock().expect("not poisoned");
        // Slots whose value has gone (and that nobody is filling) go too, so the map stays
        // as small as what runs hold, however many seeds have trained.
        map.retain(|_, slot| slot.try_lock().map_or(true, |w| w.strong_count() > 0));
        Arc::clone(map.entry(key).or_default())
    };
    let mut value = slot.lock().expect("not poisoned");
    if let Some(v) = value.upgrade() {
        return Ok(v);
    }
    let made = Arc::new(make()?);
    *value = Arc::downgrade(&made);
    Ok(made)
}

/// The data sets a session has loaded (one copy each, kept) and the splits its runs train on
/// (each kept only while a run holds it: memory stays flat in the number of runs).
pub struct DataCache {
    data_dir: PathBuf,
    loaded: Slots<DatasetName, Dataset>,
    prepared: WeakSlots<(DatasetName, u64, u64), PreparedData>,
}

impl DataCache {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            loaded: Mutex::default(),
            prepared: Mutex::default(),
        }
    }

    pub fn dataset(&self, name: DatasetName) -> Result<Arc<Dataset>, DataError> {
        get_or_make(&self.loaded, name, || data::load(name, &self.data_dir))
    }

    /// `name` split as a run with this validation share and seed trains on it.
    pub fn prepared(
        &self,
        name: DatasetName,
        val_fraction: f64,
        seed: u64,
    ) -> Result<Arc<PreparedData>, DataError> {
        let key = (name, val_fraction.to_bits(), seed);
        get_or_make_shared(&self.prepared, key, || {
            let dataset = self.dataset(name)?;
            Ok(PreparedData::prepare(&dataset, val_fraction, seed))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_split_is_made_once_and_shared() {
        let cache = DataCache::new("/nonexistent".into());
        let a = cache.prepared(DatasetName::Builtin, 0.1, 1).unwrap();
        let b = cache.prepared(DatasetName::Builtin, 0.1, 1).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let c = cache.prepared(DatasetName::Builtin, 0.1, 2).unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        // A split nobody holds is not kept.
        let weak = Arc::downgrade(&c);
        drop(c);
        assert_eq!(weak.strong_count(), 0);
        let _d = cache.prepared(DatasetName::Builtin, 0.1, 3).unwrap();
        assert_eq!(
            cache.prepared.lock().unwrap().len(),
            2,
            "seed 2's slot went"
        );
        assert_eq!(a.val.len(), 1000);
        let e = cache.prepared(DatasetName::Mnist, 0.1, 1).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/mnist: missing"), "{e}");
    }
}
