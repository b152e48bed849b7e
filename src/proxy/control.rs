//! The control task: the one task that owns the [`Registry`] and runs the API's operations on
//! it one at a time, as Toxiproxy's locks serialise them.
//!
//! Control plane: API handlers ([`super::api`]) send it a job and await the answer. Because
//! only this task touches the registry, operations can await (closing a proxy's connections
//! before answering) without holding any lock across an `.await`. The data path never waits on
//! it: connections follow toxics through `watch` channels.

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use super::error::ApiError;
use super::registry::Registry;

type Job = Box<dyn for<'a> FnOnce(&'a mut Registry) -> BoxFuture<'a, ()> + Send>;

/// A handle on the control task; cheap to clone.
#[derive(Clone)]
pub struct Control {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Control {
    /// Starts the control task with `registry` (empty).
    pub fn start(mut registry: Registry) -> (Control, tokio::task::JoinHandle<()>) {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        let task = tokio::spawn(async move {
            while let Some(job) = queue.recv().await {
                job(&mut registry).await;
            }
            registry.shutdown().await;
        });
        (Control { jobs }, task)
    }

    /// Runs `op` on the registry once the operations before it are done.
    pub async fn run<R, F>(&self, op: F) -> Result<R, ApiError>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(&'a mut Registry) -> BoxFuture<'a, R> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |registry| {
            Box::pin(async move {
                let _ = reply.send(op(registry).await);
            })
        });
        self.jobs.send(job).map_err(|_| ApiError::ShuttingDown)?;
        answer.await.map_err(|_| ApiError::ShuttingDown)
    }

    /// Runs a synchronous `op` on the registry.
    pub async fn run_sync<R, F>(&self, op: F) -> Result<R, ApiError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Registry) -> R + Send + 'static,
    {
        self.run(move |registry| {
            let result = op(registry);
            Box::pin(async move { result })
        })
        .await
    }
}
