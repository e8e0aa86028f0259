"""After bulk inference: the run ledger listed (`runs`), drift against the training data or an
earlier run (`drift`), and the images a person should look at next (`review`)."""
