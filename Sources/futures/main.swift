import ConcurrentFutures

FuturesCommand.main()
