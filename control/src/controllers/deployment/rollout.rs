//! The two rollout strategies. RollingUpdate grows the new ReplicaSet
//! within maxSurge and shrinks old ones (unhealthy pods first) as far as
//! maxUnavailable allows; Recreate scales old sets to zero, waits until
//! their pods are gone, then scales the new set up. Each step writes
//! something and ends the sync with the status; the next event brings
//! the next step.

use super::super::Error;
use super::arith;
use super::status as st;
use super::sync::{Split, Sync};

impl Sync<'_> {
    pub async fn rollout_rolling(&mut self) -> Result<(), Error> {
        let split = self.sets_and_sync_revision(true).await?;
        if self.reconcile_new(&split).await? || self.reconcile_old(&split).await? {
            return self.sync_rollout_status(&split).await;
        }
        if self.d.status.as_ref().map(|s| st::complete(&self.d, s)).unwrap_or(false) {
            self.cleanup(&split).await?;
        }
        self.sync_rollout_status(&split).await
    }

    /// Grow (or shrink) the new set; true when it was scaled.
    async fn reconcile_new(&mut self, split: &Split) -> Result<bool, Error> {
        let Some(new) = self.new_set(split) else { return Ok(false) };
        let name = arith::rs_name(new).to_string();
        let (have, want) = (arith::rs_replicas(new), arith::replicas(&self.d));
        if have == want {
            return Ok(false);
        }
        if have > want {
            return self.scale_set_if_needed(&name, want).await;
        }
        let size = arith::new_rs_new_replicas(&self.d, &self.all(split), new);
        self.scale_set_if_needed(&name, size).await
    }

    /// Shrink old sets; true when any was scaled down.
    async fn reconcile_old(&mut self, split: &Split) -> Result<bool, Error> {
        let Some(new) = self.new_set(split) else { return Ok(false) };
        let old_active: Vec<String> = arith::active(self.refs(&split.old)).iter().map(|r| arith::rs_name(r).to_string()).collect();
        if arith::sum_replicas(self.refs(&old_active)) == 0 {
            return Ok(false);
        }
        let max = arith::max_scaled_down(&self.d, &self.all(split), new);
        if max <= 0 {
            return Ok(false);
        }
        let mut scaled = 0;
        for (name, size) in arith::cleanup_unhealthy_plan(&self.refs(&old_active), max) {
            let before = self.find(&name).map(arith::rs_replicas).unwrap_or(size);
            self.scale_set_if_needed(&name, size).await?;
            scaled += before - size;
        }
        let plan = arith::scale_down_old_plan(&self.d, &self.all(split), &self.refs(&old_active));
        for (name, size) in plan {
            let before = self.find(&name).map(arith::rs_replicas).unwrap_or(size);
            self.scale_set_if_needed(&name, size).await?;
            scaled += before - size;
        }
        Ok(scaled > 0)
    }

    pub async fn rollout_recreate(&mut self) -> Result<(), Error> {
        let mut split = self.sets_and_sync_revision(false).await?;
        let old_active: Vec<String> = arith::active(self.refs(&split.old)).iter().map(|r| arith::rs_name(r).to_string()).collect();
        let mut scaled_down = false;
        for name in &old_active {
            scaled_down |= self.scale_set_if_needed(name, 0).await?;
        }
        if scaled_down || self.old_pods_running(&split) {
            return self.sync_rollout_status(&split).await;
        }
        if split.new.is_none() {
            split = self.sets_and_sync_revision(true).await?;
        }
        let want = arith::replicas(&self.d);
        if let Some(name) = split.new.clone() {
            if self.scale_set_if_needed(&name, want).await? {
                return self.sync_rollout_status(&split).await;
            }
        }
        if self.d.status.as_ref().map(|s| st::complete(&self.d, s)).unwrap_or(false) {
            self.cleanup(&split).await?;
        }
        self.sync_rollout_status(&split).await
    }
}
