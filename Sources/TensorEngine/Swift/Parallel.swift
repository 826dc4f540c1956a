import Dispatch
import Foundation

/// Runs `body` over `0..<count` split into contiguous ranges, on all cores when the work is big
/// enough to pay for the hand-off (`itemCost` is a rough element count per item).
func parallelRanges(_ count: Int, itemCost: Int = 1, tasksPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
    let threads = ProcessInfo.processInfo.activeProcessorCount
    let minimumWork = 1 << 15
    guard threads > 1, count > 1, count * max(itemCost, 1) >= minimumWork else {
        if count > 0 { body(0..<count) }
        return
    }
    let tasks = min(count, threads * tasksPerThread)
    DispatchQueue.concurrentPerform(iterations: tasks) { task in
        body((count * task / tasks)..<(count * (task + 1) / tasks))
    }
}
