//! Importing history in the app: a ChatGPT or Claude `conversations.json`,
//! or a Switchboard export, with progress for the Settings page. It runs on
//! a blocking thread and writes in batches, so the window stays live.

use std::path::Path;

use switchboard_protocol::{ImportProgress, ImportSummary};

use super::ChatService;
use crate::store::StoreError;

impl ChatService {
    /// Import the file at `path` (see [`crate::import`]); `progress` is
    /// called as batches land.
    pub fn import_history(
        &self,
        path: &Path,
        progress: &mut dyn FnMut(ImportProgress),
    ) -> Result<ImportSummary, StoreError> {
        crate::import::import_file(self.store()?, path, progress)
    }
}
