"""The Ray front door: ``semcode index --ray`` indexes many repositories into one index on a Ray cluster
(``job.run``). The only package that imports Ray; importing it loads nothing heavy."""
